# llmproxy_warnings(<target>): the project's warning set, applied to our own targets only.
add_library(llmproxy_warnings INTERFACE)
target_compile_options(llmproxy_warnings INTERFACE -Wall -Wextra -Wpedantic)
