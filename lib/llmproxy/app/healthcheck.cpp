#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <iostream>
#include <string>

#include "llmproxy/app/app.hpp"

namespace llmproxy::app {

int healthcheck(const config::Config& cfg) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  // The listener binds every interface for an empty host; loopback reaches it from inside the container.
  const std::string host = cfg.listen_host.empty() || cfg.listen_host == "0.0.0.0" || cfg.listen_host == "::"
                               ? std::string("127.0.0.1")
                               : cfg.listen_host;
  try {
    net::io_context io;
    tcp::resolver resolver(io);
    tcp::socket socket(io);
    net::connect(socket, resolver.resolve(host, std::to_string(cfg.listen_port)));
    const std::string request = "GET /health HTTP/1.0\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    net::write(socket, net::buffer(request));
    std::string response;
    boost::system::error_code ec;
    net::read(socket, net::dynamic_buffer(response), ec);  // until the server closes
    const bool ok = response.rfind("HTTP/1.1 200", 0) == 0 || response.rfind("HTTP/1.0 200", 0) == 0;
    const auto body = response.find("\r\n\r\n");
    std::cout << (body == std::string::npos ? response : response.substr(body + 4)) << "\n";
    return ok ? kExitOk : kExitRuntime;
  } catch (const std::exception& e) {
    std::cerr << "llm-proxy healthcheck: " << host << ":" << cfg.listen_port << ": " << e.what() << "\n";
    return kExitRuntime;
  }
}

}  // namespace llmproxy::app
