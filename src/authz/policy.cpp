#include "authz/policy.hpp"

#include <boost/json/value.hpp>
#include <charconv>

namespace portcullis {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// `pattern` is already lower-case when `ci` is set.
bool equal(std::string_view s, std::string_view pattern, bool ci) {
  if (!ci) return s == pattern;
  if (s.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != pattern[i]) return false;
  }
  return true;
}

bool contains(std::string_view s, std::string_view pattern, bool ci) {
  if (!ci) return s.find(pattern) != std::string_view::npos;
  if (pattern.size() > s.size()) return false;
  for (std::size_t i = 0; i + pattern.size() <= s.size(); ++i) {
    if (equal(s.substr(i, pattern.size()), pattern, true)) return true;
  }
  return false;
}

std::string_view email_domain(std::string_view email) {
  const std::size_t at = email.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : email.substr(at + 1);
}

bool any_of(const std::vector<std::string>& list, const StringMatcher& m) {
  for (const std::string& s : list) {
    if (m.match(s)) return true;
  }
  return false;
}

// A scalar claim as its JSON text (numbers, bools) or its string; false for other shapes.
bool match_scalar_claim(const boost::json::value& v, const StringMatcher& m) {
  char buf[64];
  switch (v.kind()) {
    case boost::json::kind::string:
      return m.match(v.get_string());
    case boost::json::kind::bool_:
      return m.match(v.get_bool() ? "true" : "false");
    case boost::json::kind::int64: {
      const auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
      return m.match(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    case boost::json::kind::uint64: {
      const auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
      return m.match(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    case boost::json::kind::double_: {
      const auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      if (r.ec != std::errc{}) return false;
      return m.match(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }
    default:
      return false;
  }
}

bool match_claim(const Identity* identity, const PolicyNode& node) {
  if (!identity || !identity->claims) return false;
  const boost::json::value* v = find_claim(*identity->claims, node.claim_path);
  if (!v) return false;
  if (!v->is_array()) return match_scalar_claim(*v, node.matcher);
  for (const boost::json::value& item : v->get_array()) {
    if (match_scalar_claim(item, node.matcher)) return true;
  }
  return false;
}

bool match_criterion(const PolicyNode& n, const Identity* id, const RequestAttributes& r) {
  const StringMatcher& m = n.matcher;
  switch (n.field) {
    case PolicyField::kAuthenticatedUser:
      return (id != nullptr) == n.authenticated;
    case PolicyField::kSubject:
      return m.match(id ? std::string_view(id->subject) : std::string_view{});
    case PolicyField::kEmail:
      return m.match(id ? std::string_view(id->email) : std::string_view{});
    case PolicyField::kDomain:
      return m.match(id ? email_domain(id->email) : std::string_view{});
    case PolicyField::kGroup:
      return id && any_of(id->groups, m);
    case PolicyField::kScope:
      return id && any_of(id->scopes, m);
    case PolicyField::kClientId:
      return m.match(id ? std::string_view(id->client_id) : std::string_view{});
    case PolicyField::kIssuer:
      return m.match(id ? std::string_view(id->issuer) : std::string_view{});
    case PolicyField::kClaim:
      return match_claim(id, n);
    case PolicyField::kSpiffeId:
      return m.match(std::string_view{});  // not carried by Identity yet
    case PolicyField::kHttpMethod:
      return m.match(r.method);
    case PolicyField::kHttpPath:
      return m.match(r.path);
    case PolicyField::kGrpcMethod:
      return m.match(r.grpc_method);
    case PolicyField::kSourceIp:
      for (const Cidr& c : n.cidrs) {
        if (c.contains(r.source_ip)) return true;
      }
      return false;
  }
  return false;
}

}  // namespace

std::string_view to_string(PolicyField field) {
  switch (field) {
    case PolicyField::kAuthenticatedUser:
      return "authenticated_user";
    case PolicyField::kSubject:
      return "subject";
    case PolicyField::kEmail:
      return "email";
    case PolicyField::kDomain:
      return "domain";
    case PolicyField::kGroup:
      return "group";
    case PolicyField::kScope:
      return "scope";
    case PolicyField::kClientId:
      return "client_id";
    case PolicyField::kIssuer:
      return "issuer";
    case PolicyField::kClaim:
      return "claim/";
    case PolicyField::kSpiffeId:
      return "spiffe_id";
    case PolicyField::kHttpMethod:
      return "http_method";
    case PolicyField::kHttpPath:
      return "http_path";
    case PolicyField::kGrpcMethod:
      return "grpc_method";
    case PolicyField::kSourceIp:
      return "source_ip";
  }
  return "?";
}

std::string_view to_string(MatchOp op) {
  switch (op) {
    case MatchOp::kIs:
      return "is";
    case MatchOp::kIn:
      return "in";
    case MatchOp::kStartsWith:
      return "starts_with";
    case MatchOp::kEndsWith:
      return "ends_with";
    case MatchOp::kContains:
      return "contains";
    case MatchOp::kHas:
      return "has";
  }
  return "?";
}

bool StringMatcher::match(std::string_view s) const {
  const bool ci = case_insensitive;
  switch (op) {
    case MatchOp::kIs:
    case MatchOp::kHas:
      return equal(s, values.front(), ci);
    case MatchOp::kIn:
      for (const std::string& v : values) {
        if (equal(s, v, ci)) return true;
      }
      return false;
    case MatchOp::kStartsWith: {
      const std::string& p = values.front();
      return s.size() >= p.size() && equal(s.substr(0, p.size()), p, ci);
    }
    case MatchOp::kEndsWith: {
      const std::string& p = values.front();
      return s.size() >= p.size() && equal(s.substr(s.size() - p.size()), p, ci);
    }
    case MatchOp::kContains:
      return contains(s, values.front(), ci);
  }
  return false;
}

bool PolicyNode::evaluate(const Identity* identity, const RequestAttributes& request) const {
  if (kind == Kind::kCriterion) return match_criterion(*this, identity, request);
  if (kind == Kind::kNot) return !children.front().evaluate(identity, request);
  // and: stop at the first false; or: at the first true; nor: at the first true (negated).
  const bool stop_on = kind != Kind::kAnd;
  const std::size_t n = children.size();
  for (std::size_t i = 0; i < n; ++i) {
    const PolicyNode& c = children[eval_order.empty() ? i : eval_order[i]];
    if (c.evaluate(identity, request) == stop_on) return kind == Kind::kOr;
  }
  return kind != Kind::kOr;
}

PolicyDecision Policy::evaluate(const Identity* identity, const RequestAttributes& request) const {
  for (std::size_t i = 0; i < deny_rules.size(); ++i) {
    if (deny_rules[i].evaluate(identity, request)) {
      return {false, "deny", static_cast<int>(i), "matched deny rule", source};
    }
  }
  for (std::size_t i = 0; i < allow_rules.size(); ++i) {
    if (allow_rules[i].evaluate(identity, request)) {
      return {true, "allow", static_cast<int>(i), "matched allow rule", source};
    }
  }
  return {false, "default", -1, "no rule matched", source};
}

}  // namespace portcullis
