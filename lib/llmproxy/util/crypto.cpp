#include "llmproxy/util/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <memory>

namespace llmproxy::util {

namespace {

constexpr std::string_view kEncryptedPrefix = "enc:v1:";
constexpr std::size_t kKeySize = 32;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;

constexpr std::string_view kStdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::uint8_t kInvalid = 0xff;

/// Standard base64 ends with `=` up to a multiple of four characters; base64url (tokens, RFC 4648 §5) does not.
enum class Padding { padded, unpadded };

/// Reverse lookup table for one alphabet: character -> 6-bit value, kInvalid for characters outside it.
constexpr std::array<std::uint8_t, 256> make_reverse(std::string_view alphabet) {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

constexpr auto kStdReverse = make_reverse(kStdAlphabet);

std::string encode(std::string_view data, std::string_view alphabet, Padding padding) {
  const bool pad = padding == Padding::padded;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    out += alphabet[n >> 6 & 63];
    out += alphabet[n & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const std::uint32_t n = byte(i) << 16;
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    const std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8;
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    out += alphabet[n >> 6 & 63];
    if (pad) out += '=';
  }
  return out;
}

/// Strict decoding: only alphabet characters, no whitespace, padding exactly where the encoder puts it
/// (Padding::padded) or not at all, and the unused low bits of the last character must be zero. Strictness gives
/// every byte string exactly one accepted text form, which matters for tokens compared by hash.
std::optional<std::string> decode(std::string_view text, const std::array<std::uint8_t, 256>& reverse,
                                  Padding padding) {
  std::size_t body = text.size();
  if (padding == Padding::padded) {
    if (text.size() % 4 != 0) return std::nullopt;
    if (body > 0 && text[body - 1] == '=') --body;
    if (body > 0 && text[body - 1] == '=') --body;
  }
  // A lone trailing character carries only 6 bits: never a whole byte.
  if (body % 4 == 1) return std::nullopt;

  std::string out;
  out.reserve(body / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < body; ++i) {
    const std::uint8_t v = reverse[static_cast<unsigned char>(text[i])];
    if (v == kInvalid) return std::nullopt;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

CipherCtx new_ctx() {
  CipherCtx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
  return ctx;
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

const std::array<std::uint8_t, 256> kBase64urlValue = make_reverse(kUrlAlphabet);

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t done = 0;
  // RAND_bytes takes an int length; chunk so absurd sizes cannot overflow it.
  while (done < n) {
    const std::size_t chunk = std::min<std::size_t>(n - done, INT_MAX);
    if (RAND_bytes(bytes(out) + done, static_cast<int>(chunk)) != 1) {
      throw std::runtime_error("RAND_bytes failed: the CSPRNG is not available");
    }
    done += chunk;
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  // Fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up again on every digest. The context is
  // reused per thread (hashing a token is on every proxied request).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct CtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (kSha256 == nullptr || !ctx || EVP_DigestInit_ex(ctx.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), md.data(), &len) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out(std::size_t{len} * 2, '\0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 0x0f];
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string uuid_v4() {
  // Random bytes are drawn from the CSPRNG 4 KiB at a time per thread: one RAND_bytes call (and its fork check)
  // per 256 ids instead of per id; a request id is made for most requests.
  constexpr std::size_t kPool = 4096;
  thread_local std::array<unsigned char, kPool> pool{};
  thread_local std::size_t used = kPool;
  if (used + 16 > kPool) {
    if (RAND_bytes(pool.data(), static_cast<int>(kPool)) != 1) {
      throw std::runtime_error("RAND_bytes failed: the CSPRNG is not available");
    }
    used = 0;
  }
  std::array<unsigned char, 16> raw{};
  std::copy_n(pool.begin() + static_cast<std::ptrdiff_t>(used), raw.size(), raw.begin());
  std::fill_n(pool.begin() + static_cast<std::ptrdiff_t>(used), raw.size(), 0);  // each byte is handed out once
  used += raw.size();
  // RFC 4122 section 4.4: version 4 in the high nibble of byte 6, variant 10xx in byte 8.
  raw[6] = static_cast<unsigned char>((raw[6] & 0x0f) | 0x40);
  raw[8] = static_cast<unsigned char>((raw[8] & 0x3f) | 0x80);
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t pos = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++pos;  // the '-' already there
    out[pos++] = kHex[raw[i] >> 4];
    out[pos++] = kHex[raw[i] & 0x0f];
  }
  return out;
}

std::string base64_encode(std::string_view data) { return encode(data, kStdAlphabet, Padding::padded); }
std::optional<std::string> base64_decode(std::string_view text) { return decode(text, kStdReverse, Padding::padded); }
std::string base64url_encode(std::string_view data) { return encode(data, kUrlAlphabet, Padding::unpadded); }
std::optional<std::string> base64url_decode(std::string_view text) {
  return decode(text, kBase64urlValue, Padding::unpadded);
}

Cipher::Cipher(std::string key) : key_(std::move(key)) {
  if (!key_.empty() && key_.size() != kKeySize) {
    // The size is not secret; the key is, so it is not echoed.
    throw std::invalid_argument("encryption key must be exactly 32 bytes, got " + std::to_string(key_.size()));
  }
}

std::string Cipher::encrypt(std::string_view plaintext) const {
  if (!enabled()) return std::string{plaintext};
  if (plaintext.size() > static_cast<std::size_t>(INT_MAX)) throw std::invalid_argument("plaintext too large");

  // A fresh random 96-bit nonce per value: the number of API keys ever encrypted under one key is tiny compared
  // with the 2^32 messages at which random GCM nonces become a concern.
  const std::string nonce = random_bytes(kNonceSize);
  std::string ciphertext(plaintext.size(), '\0');
  std::string tag(kTagSize, '\0');

  auto ctx = new_ctx();
  int len = 0;
  int final_len = 0;
  if (EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), bytes(key_), bytes(nonce), nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), bytes(ciphertext), &len, bytes(plaintext), static_cast<int>(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), bytes(ciphertext) + len, &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), bytes(tag)) != 1) {
    throw std::runtime_error("AES-256-GCM encryption failed");
  }
  ciphertext.resize(static_cast<std::size_t>(len + final_len));
  return std::string{kEncryptedPrefix} + base64_encode(nonce + ciphertext + tag);
}

std::string Cipher::decrypt(std::string_view stored) const {
  if (!stored.starts_with(kEncryptedPrefix)) return std::string{stored};
  if (!enabled()) throw CryptoError("value is encrypted but no ENCRYPTION_KEY is configured");

  const auto blob = base64_decode(stored.substr(kEncryptedPrefix.size()));
  if (!blob) throw CryptoError("encrypted value is corrupted (not valid base64)");
  if (blob->size() < kNonceSize + kTagSize) throw CryptoError("encrypted value is corrupted (too short)");

  const std::string_view all{*blob};
  const std::string_view nonce = all.substr(0, kNonceSize);
  const std::string_view ciphertext = all.substr(kNonceSize, all.size() - kNonceSize - kTagSize);
  std::string tag{all.substr(all.size() - kTagSize)};
  std::string plaintext(ciphertext.size(), '\0');

  auto ctx = new_ctx();
  int len = 0;
  int final_len = 0;
  if (EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), bytes(key_), bytes(nonce), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), bytes(plaintext), &len, bytes(ciphertext), static_cast<int>(ciphertext.size())) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), bytes(tag)) != 1) {
    throw CryptoError("AES-256-GCM decryption failed");
  }
  // Final verifies the tag: this is where a wrong key or any flipped bit is detected.
  if (EVP_DecryptFinal_ex(ctx.get(), bytes(plaintext) + len, &final_len) != 1) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    throw CryptoError("decryption failed: wrong ENCRYPTION_KEY or corrupted value");
  }
  plaintext.resize(static_cast<std::size_t>(len + final_len));
  return plaintext;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view text, Plus plus) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+' && plus == Plus::space) {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace llmproxy::util
