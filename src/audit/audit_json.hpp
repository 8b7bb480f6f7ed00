#pragma once
// Text helpers for the audit log format (docs/audit-format.md): JSON strings that are always
// pure ASCII (valid UTF-8 becomes \uXXXX escapes, invalid bytes U+FFFD), so every record is one
// line of exactly reproducible bytes; and RFC 3339 UTC timestamps with microseconds
// ("2026-11-30T12:00:00.123456Z") plus a parser for the CLI's --since/--until.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/expected.hpp"

namespace portcullis {

using AuditTime = std::chrono::sys_time<std::chrono::microseconds>;

// Appends `s` as a JSON string literal (with quotes), ASCII only.
void append_audit_string(std::string& out, std::string_view s);

// Appends "YYYY-MM-DDTHH:MM:SS.ffffffZ" (no quotes).
void append_audit_time(std::string& out, std::chrono::system_clock::time_point t);
std::string format_audit_time(std::chrono::system_clock::time_point t);

// "YYYYMMDDTHHMMSSZ", for rotated file names.
std::string compact_utc_time(std::chrono::system_clock::time_point t);

// RFC 3339: "2026-11-30T12:00:00Z", with optional fraction (up to 9 digits, kept to the
// microsecond) and "Z" or "+HH:MM"/"-HH:MM"; a bare date "2026-11-30" means its midnight UTC.
// 't' and 'z' are accepted for 'T' and 'Z'.
Expected<AuditTime, std::string> parse_rfc3339(std::string_view text);

}  // namespace portcullis
