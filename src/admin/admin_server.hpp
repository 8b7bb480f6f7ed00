#pragma once
// The admin listener: /healthz (process alive), /readyz (config loaded, listeners bound, not
// draining), /metrics (Prometheus text), /config (running config as JSON, secrets redacted).
// Plain HTTP/1.1 on its own address, served from the control thread's io_context.
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/net_types.hpp"

namespace portcullis {

struct AdminHooks {
  std::function<bool()> ready;
  std::function<std::string()> config_json;
  // "" when healthy; otherwise why the gateway is degraded (still ready: 200, with the reason
  // in the body), e.g. revocations not synced while Redis is unreachable.
  std::function<std::string()> degraded;
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, const SocketAddress& address, AdminHooks hooks);
  ~AdminServer();
  void start();  // binds (throws std::system_error) and starts accepting
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portcullis
