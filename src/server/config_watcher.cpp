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
#include <fstream>
#include <set>
#include <sstream>

#include "core/log.hpp"
#include "core/sha256.hpp"

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
  std::vector<std::string> files;
  std::string fingerprint;  // of the files' contents when last seen
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

  // The contents of every watched file (symlinks followed), so a change is judged by what a
  // reload would read, not by event names: a Kubernetes ConfigMap update only renames a
  // `..data` symlink, and editors' saves come as several events.
  static std::string contents_fingerprint(const std::vector<std::string>& files) {
    std::string all;
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::ostringstream text;
      if (in) text << in.rdbuf();
      all += f;
      all += in ? '+' : '-';
      all += sha256_hex(text.str());
      all += '\n';
    }
    return all;
  }

  void handle(std::size_t n) {
    bool any = false;
    for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buffer.data() + off);
      off += sizeof(inotify_event) + ev->len;
      if (dirs.count(ev->wd)) any = true;
    }
    if (!any) return;
    // Debounce: look once the burst has settled, and reload only if a file really changed.
    timer.expires_after(settle);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      std::string now = contents_fingerprint(self->files);
      if (now == self->fingerprint) return;
      self->fingerprint = std::move(now);
      self->on_change();
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
  s.files = files;
  s.fingerprint = Impl::contents_fingerprint(files);
  std::error_code ec;
  std::set<std::string> directories;
  for (const auto& file : files) {
    fs::path p = fs::absolute(fs::path(file), ec);
    if (!ec) directories.insert(p.parent_path().string());
  }
  bool ok = true;
  for (const auto& dir : directories) {
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
