# LLMPROXY_SANITIZE: AddressSanitizer + UndefinedBehaviorSanitizer (CI: the full suite, also measured for coverage).
# LLMPROXY_TSAN: ThreadSanitizer at -O1 (scripts/tsan.sh: the server, proxy, auth and database tests with
# IO_THREADS=2). The two cannot be combined: ASan and TSan each own the process's memory layout.
if(LLMPROXY_SANITIZE AND LLMPROXY_TSAN)
  message(FATAL_ERROR "LLMPROXY_SANITIZE and LLMPROXY_TSAN cannot be combined; use two build directories")
endif()
if(LLMPROXY_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(LLMPROXY_TSAN)
  # -O1 after the build type's flags: several times faster than -O0 under TSan, still exact stacks.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -O1 -g)
  add_link_options(-fsanitize=thread)
endif()
