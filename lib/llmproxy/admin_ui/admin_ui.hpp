#pragma once
/// The admin web UI (SPEC §15): static HTML, CSS and JavaScript embedded in the binary, served at `/admin/`.
/// The pages call only the public `/manage/*` API, same origin, with the management token the operator types in.
#include <optional>
#include <string_view>

#include "llmproxy/server/router.hpp"

namespace llmproxy::admin_ui {

/// The headers every `/admin` response carries, whatever its status: a Content-Security-Policy that allows
/// only this origin's own files (no inline script or style, no framing, no form posts, Trusted Types so that
/// no script can write HTML), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
/// `X-Content-Type-Options: nosniff` and same-origin opener and resource policies.
void add_security_headers(server::Headers& headers);

/// For ServerHooks::shape_error: an error the HTTP session answers itself (413, 408, refused framing, 500 after
/// a handler failure) on `/admin` or below, with the security headers added, so that every `/admin` answer
/// carries them; nothing for other targets.
std::optional<server::Response> shape_session_error(std::string_view target, int status, std::string_view code,
                                                    std::string_view message);

/// Registers `/admin` (a 308 redirect to `admin/`, relative, so it holds under a reverse proxy's path prefix) and
/// the `/admin/` prefix. `/admin/` serves index.html, and `/admin/<path>` the embedded file at that path (GET and
/// HEAD; other methods 405), with an ETag and `Cache-Control: no-cache`, so a browser revalidates (304) and never
/// runs the scripts of an older binary. Unknown paths answer 404. The handlers hold no state.
void register_routes(server::Router& router);

}  // namespace llmproxy::admin_ui
