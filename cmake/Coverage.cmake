if(LLMPROXY_COVERAGE)
  # Atomic counter updates: the server, the DB pool and the audit writer run code on several threads at once, and
  # plain increments of one counter from two threads can leave it corrupt (gcov then reports "taken -1" and
  # gcovr refuses the file).
  add_compile_options(--coverage -fprofile-update=atomic -O0 -g)
  add_link_options(--coverage)
endif()
