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
  # -Wno-tsan: GCC warns that TSan does not model std::atomic_thread_fence, which Asio's std_fenced_block puts
  # around every handler invocation. Handlers reach another thread through Asio's mutex-protected queues, which
  # TSan does see, so the fences hide nothing from it; the warning points into library headers, not our code.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -O1 -g -Wno-tsan)
  add_link_options(-fsanitize=thread)
endif()
