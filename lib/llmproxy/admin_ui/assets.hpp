#pragma once
/// The admin UI's files (web/admin/), compiled into the binary at build time (cmake/embed_admin_ui.cmake).
#include <span>
#include <string_view>

namespace llmproxy::admin_ui {

struct Asset {
  std::string_view path;          // relative to web/admin/, e.g. "js/main.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
  std::string_view etag;          // quoted strong validator: the start of the file's SHA-256
};

/// Every embedded file, sorted by path. Static storage: safe from any thread.
std::span<const Asset> embedded_assets();

/// The asset at `path` (relative, no leading slash), or null.
const Asset* find_asset(std::string_view path);

}  // namespace llmproxy::admin_ui
