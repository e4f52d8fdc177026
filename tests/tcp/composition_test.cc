// Composition with TCP: what is well formed is a `valid_stack`, and what is
// not is detected by the concept (no hard error), as for the other layers
// (tests/stack/composition_test.cc).
#include <catch2/catch.hpp>

#include "tests/tcp/harness.hpp"

using namespace tcp_test;

namespace {
struct app {
  template <class C>
  void on_data(C&, bytes_view) {}
};
struct other_app {
  template <class C>
  void on_data(C&, bytes_view) {}
};
struct not_constructible {
  explicit not_constructible(int) {}
  template <class C>
  void on_data(C&, bytes_view) {}
};
struct not_a_policy {};
struct custom_policy : tcp_default_policy {
  duration msl() const noexcept { return std::chrono::seconds(1); }
};
struct bad_mode {};
}  // namespace

// Well formed.
static_assert(valid_stack<Ethernet<>, IP<TCP<>>, ARP<>>);
static_assert(valid_stack<Ethernet<>, IP<ICMP<>, TCP<Listen<80, app>>>, ARP<>>);
static_assert(valid_stack<Ethernet<>, IP<TCP<Session<custom_policy>, Listen<80, app>, Listen<81, app, instance::shared>>>>);
static_assert(valid_stack<Ethernet<>, IP<TCP<Listen<80, app>, Session<>>>, ARP<>>);
static_assert(TCP<Listen<1, app>, Listen<2, other_app>>::valid);

// Not: two listeners on a port, two sessions, an argument that is neither,
// port 0, an unknown mode, an application the layer cannot construct, a
// policy without the points, TCP twice under IP, TCP right on Ethernet.
static_assert(!valid_stack<Ethernet<>, IP<TCP<Listen<80, app>, Listen<80, other_app>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<Session<>, Session<custom_policy>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<int>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<Listen<0, app>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<Listen<80, app, bad_mode>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<Listen<80, not_constructible>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<Session<not_a_policy>>>>);
static_assert(!valid_stack<Ethernet<>, IP<TCP<>, TCP<Listen<80, app>>>>);
static_assert(!valid_stack<Ethernet<>, TCP<>>);

TEST_CASE("TCP compositions are checked by valid_stack") {
  STATIC_REQUIRE(valid_stack<Ethernet<>, IP<ICMP<>, TCP<Listen<80, app>>>, ARP<>>);
  STATIC_REQUIRE_FALSE(valid_stack<Ethernet<>, IP<TCP<Listen<80, app>, Listen<80, other_app>>>>);
  STATIC_REQUIRE(tcp_session_policy_basics<tcp_default_policy>);
  STATIC_REQUIRE_FALSE(tcp_session_policy_basics<not_a_policy>);
}
