#pragma once
/// Hashing, encryption and randomness on OpenSSL. Thread-safe; any thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace llmproxy::util {

/// `n` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws std::runtime_error if the CSPRNG fails.
std::string random_bytes(std::size_t n);

/// Lower-case hex SHA-256 of `data` (64 chars).
std::string sha256_hex(std::string_view data);

/// Compares in time independent of where the inputs differ (length differences leak only the length).
bool constant_time_equal(std::string_view a, std::string_view b);

/// A random version-4 UUID, lower-case canonical form. Its bytes come from the CSPRNG, drawn in batches per
/// thread (ids are not secrets; the process never forks after boot, which would repeat a batch).
std::string uuid_v4();

/// base64url's alphabet reversed: each byte's 6-bit value as a base64url character, or 0xff for a byte outside
/// the alphabet (for checking characters without decoding them, as is_well_formed_token() does).
extern const std::array<std::uint8_t, 256> kBase64urlValue;

/// Standard base64 with padding / base64url without padding.
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);  // nullopt if invalid
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

/// What `+` means to percent_decode: itself (URI components) or a space (form-encoded query strings).
enum class Plus { literal, space };
/// `%XX` sequences decoded; a `%` not followed by two hex digits is kept as is (lenient, never fails).
std::string percent_decode(std::string_view text, Plus plus = Plus::literal);

/// Thrown by Cipher::decrypt when a value cannot be decrypted (wrong key, corrupted). Never contains secrets.
struct CryptoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// AES-256-GCM for project API keys at rest, in the reference format `enc:v1:` + base64(nonce12 || ciphertext ||
/// tag16). Without a key it stores and returns values unchanged.
class Cipher {
 public:
  /// `key`: 32 raw bytes, or empty for "no encryption". Throws std::invalid_argument for other sizes.
  explicit Cipher(std::string key);
  bool enabled() const { return !key_.empty(); }
  /// `enc:v1:...` when enabled, else `plaintext` unchanged.
  std::string encrypt(std::string_view plaintext) const;
  /// Values with the `enc:v1:` prefix are decrypted (CryptoError if that fails or no key is set); others are
  /// returned unchanged (plaintext written before a key was configured).
  std::string decrypt(std::string_view stored) const;

 private:
  std::string key_;
};

}  // namespace llmproxy::util
