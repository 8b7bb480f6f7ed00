#include "server/config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/log.hpp"

#include <spdlog/spdlog.h>

namespace portcullis {

namespace fs = std::filesystem;

struct ConfigWatcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor ex, std::function<void()> cb, std::chrono::milliseconds s)
      : stream(ex), timer(ex), on_change(std::move(cb)), settle(s) {}

  boost::asio::posix::stream_descriptor stream;
  boost::asio::steady_timer timer;
  std::function<void()> on_change;
  std::chrono::milliseconds settle;
  std::map<int, std::string> dirs;                     // watch descriptor -> directory
  std::map<std::string, std::set<std::string>> names;  // directory -> file names watched
  std::array<char, 8192> buffer{};
  bool reading = false;
  bool stopped = false;

  void read() {
    if (reading || stopped) return;
    reading = true;
    stream.async_read_some(
        boost::asio::buffer(buffer),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          self->reading = false;
          if (ec || self->stopped) return;
          self->handle(n);
          self->read();
        });
  }

  void handle(std::size_t n) {
    bool relevant = false;
    for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buffer.data() + off);
      off += sizeof(inotify_event) + ev->len;
      auto dir = dirs.find(ev->wd);
      if (dir == dirs.end() || ev->len == 0) continue;
      const std::string name(ev->name);
      const auto& watched = names[dir->second];
      if (watched.count(name)) relevant = true;
    }
    if (!relevant) return;
    // Debounce: one reload after the burst (a save is often several events).
    timer.expires_after(settle);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->stopped) self->on_change();
    });
  }
};

ConfigWatcher::ConfigWatcher(boost::asio::any_io_executor executor,
                             std::function<void()> on_change, std::chrono::milliseconds settle)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(on_change), settle)) {}

ConfigWatcher::~ConfigWatcher() {
  stop();
}

bool ConfigWatcher::watch(const std::vector<std::string>& files) {
  auto& s = *impl_;
  if (s.stopped) return false;
  if (!s.stream.is_open()) {
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
      app_log()->warn("cannot watch config files (inotify: {}); reload with SIGHUP",
                      std::strerror(errno));
      return false;
    }
    s.stream.assign(fd);
  }
  for (const auto& [wd, dir] : s.dirs) inotify_rm_watch(s.stream.native_handle(), wd);
  s.dirs.clear();
  s.names.clear();
  std::error_code ec;
  for (const auto& file : files) {
    fs::path p = fs::absolute(fs::path(file), ec);
    if (ec) continue;
    s.names[p.parent_path().string()].insert(p.filename().string());
  }
  bool ok = true;
  for (const auto& [dir, unused] : s.names) {
    const int wd = inotify_add_watch(s.stream.native_handle(), dir.c_str(),
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                                         IN_MOVED_FROM | IN_ATTRIB);
    if (wd < 0) {
      app_log()->warn("cannot watch {} ({}); reload with SIGHUP", escape_for_log(dir),
                      std::strerror(errno));
      ok = false;
      continue;
    }
    s.dirs[wd] = dir;
  }
  s.read();
  return ok;
}

void ConfigWatcher::stop() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  boost::system::error_code ec;
  s.timer.cancel();
  s.stream.close(ec);
}

}  // namespace portcullis
