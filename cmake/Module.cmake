# llmproxy_module(<name> [PUBLIC deps...] [PRIVATE deps...])
# One folder under lib/llmproxy/ = one namespace = one static library `llmproxy_<name>`.
# Sources: every .cpp in the folder and its detail/ subfolder (not nested modules such as db/sqlite).
function(llmproxy_module name)
  cmake_parse_arguments(M "" "" "PUBLIC;PRIVATE" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/detail/*.cpp)
  add_library(llmproxy_${name} STATIC ${sources})
  target_include_directories(llmproxy_${name} PUBLIC ${PROJECT_SOURCE_DIR}/lib)
  target_link_libraries(llmproxy_${name} PUBLIC ${M_PUBLIC} PRIVATE ${M_PRIVATE} llmproxy_warnings)
endfunction()
