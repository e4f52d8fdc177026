// The impairment spec (`--impair`): parsing, its errors, and printing back.
#include "pystack/device/impair.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace {
using namespace pystack;
using namespace std::chrono_literals;
}  // namespace

TEST_CASE("the spec of the issue parses to its fields", "[impairment]") {
  const auto r = impairment::parse("loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7");
  REQUIRE(r);
  CHECK(r->loss == 0.05);
  CHECK(r->reorder == 0.05);
  CHECK(r->duplicate == 0.01);
  CHECK(r->corrupt == 0.01);
  CHECK(r->delay == 2ms);
  CHECK(r->jitter == 0ns);
  CHECK(r->hold == impairment{}.hold);
  CHECK(r->seed == 7);
  CHECK(r->to_string() == "loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7");
  CHECK_FALSE(r->is_none());
}

TEST_CASE("an empty spec is no impairment", "[impairment]") {
  for (const char* spec : {"", "  "}) {
    const auto r = impairment::parse(spec);
    REQUIRE(r);
    CHECK(*r == impairment{});
    CHECK(r->is_none());
  }
  CHECK(impairment{}.to_string() == "seed=1");
}

TEST_CASE("every unit of duration, decimals and the long key name", "[impairment]") {
  struct example {
    const char* spec;
    duration delay;
  };
  const auto e = GENERATE(example{"delay=250ns", 250ns}, example{"delay=40us", 40us}, example{"delay=1.5ms", 1500us},
                          example{"delay=2s", 2s}, example{"delay=0.25s", 250ms}, example{"delay=0ms", 0ns});
  CAPTURE(e.spec);
  const auto r = impairment::parse(e.spec);
  REQUIRE(r);
  CHECK(r->delay == e.delay);

  const auto d = impairment::parse("duplicate=0.5, jitter=3us ,hold=1s,seed=18446744073709551615");
  REQUIRE(d);
  CHECK(d->duplicate == 0.5);
  CHECK(d->jitter == 3us);
  CHECK(d->hold == 1s);
  CHECK(d->seed == 18446744073709551615ull);
}

TEST_CASE("to_string parses back to the same value", "[impairment]") {
  const impairment samples[] = {
      {},
      {.loss = 1.0},
      {.loss = 0.1, .reorder = 0.2, .duplicate = 0.3, .corrupt = 0.4, .delay = 1500us, .jitter = 7ns, .hold = 3s, .seed = 99},
      {.loss = 1.0 / 3.0, .delay = 1s, .seed = 0},
  };
  for (const auto& s : samples) {
    const std::string text = s.to_string();
    CAPTURE(text);
    const auto back = impairment::parse(text);
    REQUIRE(back);
    CHECK(*back == s);
  }
}

TEST_CASE("a bad spec gets a message naming the key and why", "[impairment]") {
  struct bad {
    const char* spec;
    const char* message;
  };
  const auto b = GENERATE(
      bad{"loss=1.5", "loss: 1.5 is not a probability in [0, 1]"},
      bad{"loss=-0.1", "loss: -0.1 is not a probability in [0, 1]"},
      bad{"reorder=abc", "reorder: 'abc' is not a number"},
      bad{"dup=0.1x", "dup: '0.1x' is not a number"},
      bad{"corrupt=nan", "corrupt: 'nan' is not a number"},
      bad{"loss=inf", "loss: 'inf' is not a number"},
      bad{"loss=+0.1", "loss: '+0.1' is not a number"},
      bad{"delay=5", "delay: '5' needs a unit: ns, us, ms or s"},
      bad{"delay=5min", "delay: '5min' needs a unit: ns, us, ms or s"},
      bad{"delay=ms", "delay: 'ms' is not a duration (e.g. 2ms, 1.5s)"},
      bad{"jitter=-1ms", "jitter: -1ms is negative"},
      bad{"hold=10000000000s", "hold: 10000000000s is too long"},
      bad{"seed=-3", "seed: '-3' is not an unsigned decimal integer"},
      bad{"seed=0x10", "seed: '0x10' is not an unsigned decimal integer"},
      bad{"seed=18446744073709551616", "seed: 18446744073709551616 does not fit in 64 bits"},
      bad{"lose=0.1", "lose: unknown key (known: loss, reorder, dup, corrupt, delay, jitter, hold, seed)"},
      bad{"loss", "loss: expected key=value"},
      bad{"loss=", "loss: missing value"},
      bad{"loss=0.1,,dup=0.1", "empty item in impairment spec (two commas, or a trailing comma)"},
      bad{"loss=0.1,", "empty item in impairment spec (two commas, or a trailing comma)"},
      bad{"loss=0.1,loss=0.2", "loss: given more than once"},
      bad{"dup=0.1,duplicate=0.2", "duplicate: given more than once"});
  CAPTURE(b.spec);
  const auto r = impairment::parse(b.spec);
  REQUIRE_FALSE(r);
  CHECK(r.error() == b.message);
}
