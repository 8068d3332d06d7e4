// llm-proxy: wires the process environment into the application. Everything else lives in lib/llmproxy/.
#include "llmproxy/app/app.hpp"

int main(int argc, char** argv) { return llmproxy::app::main(argc, argv, llmproxy::config::process_env()); }
