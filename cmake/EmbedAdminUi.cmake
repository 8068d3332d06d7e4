# llmproxy_embed_admin_ui(<target>): compiles every file under web/admin/ into <target> as a generated C++ table
# (path, content type, bytes, ETag), so the binary serves the admin UI without files on disk (SPEC §15).
set(LLMPROXY_EMBED_ADMIN_UI_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_admin_ui.cmake)
function(llmproxy_embed_admin_ui target)
  set(dir ${PROJECT_SOURCE_DIR}/web/admin)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS ${dir}/*)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_admin_ui.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${dir} -DOUT=${out} -P ${LLMPROXY_EMBED_ADMIN_UI_SCRIPT}
    DEPENDS ${files} ${LLMPROXY_EMBED_ADMIN_UI_SCRIPT}
    COMMENT "Embedding the admin UI (web/admin/)")
  target_sources(${target} PRIVATE ${out})
endfunction()
