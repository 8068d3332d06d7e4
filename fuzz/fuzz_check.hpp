#pragma once
/// FUZZ_CHECK(cond): a property every input must satisfy. A violation prints the condition and aborts, which
/// libFuzzer reports as a crash and saves the input as a reproducer.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (false)
