# llmproxy_embed_migrations(<target> <driver>): compiles migrations/<driver>/*.sql into <target>
# as a generated C++ table, so the binary needs no migration files on disk.
set(LLMPROXY_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_migrations.cmake)
function(llmproxy_embed_migrations target driver)
  set(dir ${PROJECT_SOURCE_DIR}/migrations/${driver})
  file(GLOB files CONFIGURE_DEPENDS ${dir}/*.sql)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_migrations_${driver}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DDIR=${dir} -DDRIVER=${driver} -DOUT=${out} -P ${LLMPROXY_EMBED_SCRIPT}
    DEPENDS ${files} ${LLMPROXY_EMBED_SCRIPT}
    COMMENT "Embedding ${driver} migrations")
  target_sources(${target} PRIVATE ${out})
endfunction()
