#include "llmproxy/cache/cache.hpp"

namespace llmproxy::cache {}  // encode()/decode(): to be written
