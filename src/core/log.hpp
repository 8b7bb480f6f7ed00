#pragma once
// Logging set-up and escaping. Two spdlog loggers: the application log (stderr, text) and
// the access log (one JSON object a line; stdout, stderr, a file or off). Anything that
// came from the network is escaped before it reaches either (no log injection through
// headers, paths or SNI).
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

namespace portcullis {

// Creates the loggers; `access_log_path` is "stdout", "stderr", "off" or a file path.
// Throws std::runtime_error when the file cannot be opened (start-up only).
void init_logging(const std::string& access_log_path);

std::shared_ptr<spdlog::logger> app_log();
std::shared_ptr<spdlog::logger> access_log();  // null when the access log is off

// Appends `s` as a JSON string literal (with quotes). Control characters, quotes, backslash
// and bytes >= 0x80 are escaped (\uXXXX), so the output is always one safe ASCII line.
void append_json_string(std::string& out, std::string_view s);

// The escaped form without quotes, for text log messages.
std::string escape_for_log(std::string_view s);

}  // namespace portcullis
