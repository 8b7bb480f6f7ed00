#pragma once
// The policy decision for a route once authentication is done, shared by the gateway
// (authorize() in src/proxy/admission.cpp) and `portcullis policy explain`, so both apply
// the same defaults: a route's policy when it has one; otherwise a public route allows
// ("public route") and any other route denies ("route has no policy"). Allocates nothing.
#include "authz/policy.hpp"
#include "core/config.hpp"

namespace portcullis {

// `identity` is null on public routes and for unauthenticated requests.
PolicyDecision decide_route_policy(const RouteConfig& route, const Identity* identity,
                                   const RequestAttributes& request);

}  // namespace portcullis
