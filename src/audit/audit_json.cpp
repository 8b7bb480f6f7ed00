#include "audit/audit_json.hpp"

#include <cstdio>
#include <ctime>

namespace portcullis {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u16(std::string& out, std::uint32_t unit) {
  out += "\\u";
  out.push_back(kHex[(unit >> 12) & 0xF]);
  out.push_back(kHex[(unit >> 8) & 0xF]);
  out.push_back(kHex[(unit >> 4) & 0xF]);
  out.push_back(kHex[unit & 0xF]);
}

// Length of the valid UTF-8 sequence at s[i] and its code point; 0 when invalid (overlong,
// surrogate, beyond U+10FFFF, truncated).
std::size_t decode_utf8(std::string_view s, std::size_t i, std::uint32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const char c = s[pos + k];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

void append_audit_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    // Fast path: a run of printable ASCII that needs no escape is copied in one go.
    std::size_t run = i;
    while (run < s.size()) {
      const unsigned char r = static_cast<unsigned char>(s[run]);
      if (r < 0x20 || r >= 0x7F || r == '"' || r == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    switch (c) {
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x80) {  // other control characters and DEL
      append_u16(out, c);
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = decode_utf8(s, i, cp);
    if (len == 0) {
      append_u16(out, 0xFFFD);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      append_u16(out, 0xD800 + (cp >> 10));
      append_u16(out, 0xDC00 + (cp & 0x3FF));
    } else {
      append_u16(out, cp);
    }
    i += len;
  }
  out.push_back('"');
}

void append_audit_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = floor<microseconds>(t);
  const auto day = floor<days>(us);
  const year_month_day ymd{day};
  const hh_mm_ss hms{us - day};
  // "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" by hand: this runs once per request on a worker.
  char buf[27];
  const auto digits = [&](int at, long long v, int n) {
    for (int k = n - 1; k >= 0; --k, v /= 10) buf[at + k] = static_cast<char>('0' + v % 10);
  };
  digits(0, int(ymd.year()), 4);
  buf[4] = '-';
  digits(5, unsigned(ymd.month()), 2);
  buf[7] = '-';
  digits(8, unsigned(ymd.day()), 2);
  buf[10] = 'T';
  digits(11, hms.hours().count(), 2);
  buf[13] = ':';
  digits(14, hms.minutes().count(), 2);
  buf[16] = ':';
  digits(17, hms.seconds().count(), 2);
  buf[19] = '.';
  digits(20, hms.subseconds().count(), 6);
  buf[26] = 'Z';
  out.append(buf, sizeof buf);
}

std::string format_audit_time(std::chrono::system_clock::time_point t) {
  std::string out;
  append_audit_time(out, t);
  return out;
}

std::string compact_utc_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto s = floor<seconds>(t);
  const auto day = floor<days>(s);
  const year_month_day ymd{day};
  const hh_mm_ss hms{s - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()));
  return buf;
}

Expected<AuditTime, std::string> parse_rfc3339(std::string_view t) {
  using namespace std::chrono;
  const auto bad = [&](std::string_view why) {
    return unexpected("'" + std::string(t) + "' is not an RFC 3339 time (" + std::string(why) +
                      "; e.g. 2026-11-30T12:00:00Z)");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(t, 0, 4, y) || t.size() < 10 || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' ||
      !digits(t, 8, 2, d))
    return bad("date must be YYYY-MM-DD");
  const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                           day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return bad("no such date");
  AuditTime result{sys_days(ymd)};
  if (t.size() == 10) return result;
  if ((t[10] != 'T' && t[10] != 't' && t[10] != ' ') || !digits(t, 11, 2, h) || t.size() < 19 ||
      t[13] != ':' || !digits(t, 14, 2, mi) || t[16] != ':' || !digits(t, 17, 2, s))
    return bad("time must be THH:MM:SS");
  if (h > 23 || mi > 59 || s > 60) return bad("time out of range");
  result += hours(h) + minutes(mi) + seconds(s);
  std::size_t pos = 19;
  if (pos < t.size() && t[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    long long frac = 0;
    while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
      if (n < 6) frac = frac * 10 + (t[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0 || n > 9) return bad("fraction must have 1 to 9 digits");
    for (std::size_t k = n; k < 6; ++k) frac *= 10;
    result += microseconds(frac);
  }
  if (pos >= t.size()) return bad("missing time zone (Z or +HH:MM)");
  if ((t[pos] == 'Z' || t[pos] == 'z') && pos + 1 == t.size()) return result;
  int oh = 0, om = 0;
  if ((t[pos] == '+' || t[pos] == '-') && t.size() == pos + 6 && digits(t, pos + 1, 2, oh) &&
      t[pos + 3] == ':' && digits(t, pos + 4, 2, om) && oh <= 23 && om <= 59) {
    const minutes offset = hours(oh) + minutes(om);
    return t[pos] == '+' ? result - offset : result + offset;
  }
  return bad("time zone must be Z or +HH:MM");
}

}  // namespace portcullis
