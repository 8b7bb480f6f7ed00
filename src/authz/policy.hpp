#pragma once
// Policy: the least-privilege authorization language compiled into a tree of small matcher
// nodes. Deny overrides allow; nothing matched = deny. Evaluation allocates nothing: all
// patterns are normalised (case, CIDRs) at load and compared as string_views.
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "authn/identity.hpp"
#include "core/net_types.hpp"

namespace portcullis {

// The request attributes a policy can look at (views into the request; not owned).
struct RequestAttributes {
  std::string_view method;       // upper-case HTTP method
  std::string_view path;         // normalised path
  std::string_view grpc_method;  // "/pkg.Service/Method", empty when not gRPC
  boost::asio::ip::address source_ip;
};

// What a policy decided and which rule made the decision.
struct PolicyDecision {
  bool allow = false;
  std::string_view section = "default";  // "allow" | "deny" | "default"
  int rule_index = -1;                   // index within the section; -1 for default
  std::string_view reason = "no rule matched";
  std::string_view source;  // the policy's source name (file or route), owned by the Policy
};

// An identity or request attribute a criterion reads.
enum class PolicyField {
  kAuthenticatedUser,
  kSubject,
  kEmail,
  kDomain,
  kGroup,
  kScope,
  kClientId,
  kIssuer,
  kClaim,
  kSpiffeId,
  kHttpMethod,
  kHttpPath,
  kGrpcMethod,
  kSourceIp,
};

enum class MatchOp { kIs, kIn, kStartsWith, kEndsWith, kContains, kHas };

// The language's names: "group", "claim/" (the path follows), ...; "is", "starts_with", ...
std::string_view to_string(PolicyField field);
std::string_view to_string(MatchOp op);

// One matcher (`is: S`, `in: [..]`, ...) over strings, with patterns pre-normalised.
struct StringMatcher {
  MatchOp op = MatchOp::kIs;
  std::vector<std::string> values;  // one value except for `in`
  bool case_insensitive = false;    // patterns are stored lower-case when set
  bool match(std::string_view s) const;
};

// A node of the compiled tree: an operator over children or a criterion.
struct PolicyNode {
  enum class Kind { kAnd, kOr, kNot, kNor, kCriterion };
  Kind kind = Kind::kCriterion;
  std::vector<PolicyNode> children;  // operators (kNot has exactly one), in written order
  // Indexes into children, cheapest first: the order evaluate() uses (same result, as
  // criteria have no side effects). Empty = written order (nodes built by hand in tests).
  std::vector<std::uint16_t> eval_order;
  PolicyField field = PolicyField::kAuthenticatedUser;
  bool authenticated = true;  // kAuthenticatedUser: the expected value
  std::string claim_path;     // kClaim: dotted path
  StringMatcher matcher;      // string criteria
  std::vector<Cidr> cidrs;    // kSourceIp
  int line = 0;               // 1-based position in the source; 0 when unknown
  int column = 0;

  bool evaluate(const Identity* identity, const RequestAttributes& request) const;
};

// A compiled policy: top-level rules of each section (items of a top-level `or`, or the
// single expression).
struct Policy {
  std::string source;   // file name, or "<config file> route <name>" when inline
  std::string version;  // 16 hex digits of SHA-256 over the source text: changes with the policy
  std::vector<PolicyNode> allow_rules;
  std::vector<PolicyNode> deny_rules;

  // `identity` is null for unauthenticated requests. Allocates nothing.
  PolicyDecision evaluate(const Identity* identity, const RequestAttributes& request) const;
};

}  // namespace portcullis
