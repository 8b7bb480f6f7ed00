#pragma once
// ConfigWatcher: watches the files a config was built from (the config and its policy files)
// with inotify on an Asio io_context, and calls `on_change` once a burst of changes has
// settled and the files' contents really differ (editors write through temp files and
// renames, Kubernetes swaps a `..data` symlink: the directories are watched and any event
// there leads to a content comparison). Used by the server next to SIGHUP.
//
//   ConfigWatcher w(control, [&] { reload(); });
//   w.watch(config->source_files);   // again after each reload: the set may change
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace portcullis {

class ConfigWatcher {
 public:
  ConfigWatcher(boost::asio::any_io_executor executor, std::function<void()> on_change,
                std::chrono::milliseconds settle = std::chrono::milliseconds(200));
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Replaces the watched set. Returns false (and logs) when inotify is unavailable.
  bool watch(const std::vector<std::string>& files);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace portcullis
