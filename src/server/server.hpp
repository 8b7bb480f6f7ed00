#pragma once
// The running gateway: owns the config snapshot holder, the listeners' TLS contexts, the
// worker threads and the admin listener, and handles signals. SIGHUP reloads the config
// (a failing reload keeps the running one and logs why); SIGTERM/SIGINT drain in-flight
// requests up to server.drain_timeout and return.
#include <memory>
#include <string>

namespace portcullis {

struct Config;

class Server {
 public:
  Server(std::string config_path, std::shared_ptr<const Config> config);
  ~Server();
  // Binds everything (throws on failure), serves until a terminating signal, drains.
  // Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace portcullis
