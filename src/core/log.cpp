#include "core/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <stdexcept>

namespace portcullis {
namespace {

std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_app;
std::shared_ptr<spdlog::logger> g_access;

std::shared_ptr<spdlog::logger> make_app_logger() {
  auto logger = std::make_shared<spdlog::logger>("portcullis",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  return logger;
}

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

}  // namespace

void init_logging(const std::string& access_log_path) {
  std::lock_guard lock(g_mutex);
  if (!g_app) g_app = make_app_logger();
  std::shared_ptr<spdlog::logger> access;
  if (access_log_path == "stdout") {
    access = std::make_shared<spdlog::logger>("access",
                                              std::make_shared<spdlog::sinks::stdout_sink_mt>());
  } else if (access_log_path == "stderr") {
    access = std::make_shared<spdlog::logger>("access",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else if (access_log_path != "off") {
    try {
      access = std::make_shared<spdlog::logger>(
          "access", std::make_shared<spdlog::sinks::basic_file_sink_mt>(access_log_path));
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("cannot open access log '" + access_log_path + "': " + e.what());
    }
  }
  if (access) {
    access->set_pattern("%v");
    access->flush_on(spdlog::level::info);
  }
  g_access = access;
}

std::shared_ptr<spdlog::logger> app_log() {
  std::lock_guard lock(g_mutex);
  if (!g_app) g_app = make_app_logger();
  return g_app;
}

std::shared_ptr<spdlog::logger> access_log() {
  std::lock_guard lock(g_mutex);
  return g_access;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_escaped(out, s);
  out.push_back('"');
}

std::string escape_for_log(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_escaped(out, s);
  return out;
}

}  // namespace portcullis
