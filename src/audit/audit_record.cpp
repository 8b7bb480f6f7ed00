#include "audit/audit_record.hpp"

#include "audit/audit_json.hpp"
#include "core/sha256.hpp"

namespace portcullis {

namespace {

// {"seq":N,"prev":"<hex>","type":"<type>"[,members]} appended to `out` (no newline).
void compose_line(std::string& out, std::uint64_t seq, std::string_view prev, std::string_view type,
                  std::string_view members) {
  out += "{\"seq\":";
  out += std::to_string(seq);
  out += ",\"prev\":\"";
  out += prev;
  out += "\",\"type\":\"";
  out += type;
  out += '"';
  if (!members.empty()) {
    out.push_back(',');
    out += members;
  }
  out.push_back('}');
}

}  // namespace

std::string AuditChain::line(std::string_view type, std::string_view members) const {
  std::string out;
  out.reserve(96 + type.size() + members.size());
  compose_line(out, next_seq, prev, type, members);
  return out;
}

void AuditChain::append(std::string& out, std::string_view type, std::string_view members) {
  const std::size_t begin = out.size();
  compose_line(out, next_seq, prev, type, members);
  advance(std::string_view(out).substr(begin));
  out.push_back('\n');
}

void AuditChain::advance(std::string_view line) {
  prev = sha256_hex(line);
  ++next_seq;
}

std::string audit_key_members(std::string_view time, std::string_view instance,
                              const AuditSigningKey& key) {
  std::string out = "\"time\":\"";
  out += time;
  out += "\",\"format\":\"";
  out += kAuditFormat;
  out += "\",\"instance\":";
  append_audit_string(out, instance);
  out += ",\"alg\":\"Ed25519\",\"kid\":\"";
  out += key.kid();
  out += "\",\"key\":";
  out += key.public_jwk();
  return out;
}

Expected<std::string, std::string> audit_checkpoint_line(const AuditChain& chain,
                                                         std::string_view time,
                                                         std::string_view instance,
                                                         const AuditSigningKey& key,
                                                         std::string_view reason) {
  std::string members = "\"time\":\"";
  members += time;
  members += "\",\"instance\":";
  append_audit_string(members, instance);
  members += ",\"kid\":\"";
  members += key.kid();
  members += "\",\"reason\":\"";
  members += reason;
  members += '"';
  std::string line = chain.line(audit_type::checkpoint, members);
  auto sig = key.sign(line);
  if (!sig) return unexpected(sig.error());
  line.pop_back();  // '}'
  line += kAuditSigMember;
  line += *sig;
  line += "\"}";
  return line;
}

std::optional<SignedCheckpoint> split_checkpoint(std::string_view line) {
  if (!line.ends_with("\"}")) return std::nullopt;
  const std::size_t at = line.rfind(kAuditSigMember);
  if (at == std::string_view::npos) return std::nullopt;
  const std::size_t sig_begin = at + kAuditSigMember.size();
  const std::string_view sig = line.substr(sig_begin, line.size() - 2 - sig_begin);
  for (char c : sig) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return std::nullopt;
  }
  SignedCheckpoint out;
  out.message.assign(line.substr(0, at));
  out.message.push_back('}');
  out.sig.assign(sig);
  return out;
}

}  // namespace portcullis
