// The send path's frame pool: buffers lent and given back, the most recently
// given back lent first (its top kept apart from the array of the others),
// exhaustion counted.
#include "pystack/stack/buffer.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <vector>

namespace {
using namespace pystack;

TEST_CASE("a pool lends every buffer once, then counts exhaustion") {
  buffer_pool pool(3);
  REQUIRE(pool.size() == 3);
  REQUIRE(pool.available() == 3);
  std::vector<frame> lent;
  std::set<frame_buffer*> seen;
  for (int i = 0; i < 3; ++i) {
    lent.push_back(pool.acquire(40));
    REQUIRE(lent.back());
    REQUIRE(lent.back()->headroom() == 40);
    REQUIRE(lent.back()->size() == 0);
    seen.insert(&*lent.back());
    REQUIRE(pool.available() == static_cast<std::size_t>(2 - i));
  }
  REQUIRE(seen.size() == 3);
  frame none = pool.acquire(40);
  REQUIRE_FALSE(none);
  REQUIRE(pool.exhausted() == 1);
  lent.clear();
  REQUIRE(pool.available() == 3);
  REQUIRE(pool.exhausted() == 1);
}

TEST_CASE("a pool lends the buffer given back last first, and loses none") {
  buffer_pool pool(4);
  frame a = pool.acquire(0), b = pool.acquire(0), c = pool.acquire(0);
  frame_buffer *pa = &*a, *pb = &*b, *pc = &*c;
  REQUIRE(pool.available() == 1);
  // Given back a, then c, then b: lent again b, c, a, then the fourth.
  a = frame();
  REQUIRE(pool.available() == 2);
  c = frame();
  REQUIRE(pool.available() == 3);
  b = frame();
  REQUIRE(pool.available() == 4);
  frame x = pool.acquire(10);
  REQUIRE(&*x == pb);
  frame y = pool.acquire(10);
  REQUIRE(&*y == pc);
  frame z = pool.acquire(10);
  REQUIRE(&*z == pa);
  frame w = pool.acquire(10);
  REQUIRE(w);
  REQUIRE(&*w != pa);
  REQUIRE(&*w != pb);
  REQUIRE(&*w != pc);
  REQUIRE(pool.available() == 0);
  REQUIRE_FALSE(pool.acquire(10));
  REQUIRE(pool.exhausted() == 1);

  // One frame taken and given back over and over (an ACK per segment) is
  // the same buffer each time, and the count stays right.
  y = frame();
  for (int i = 0; i < 5; ++i) {
    frame f = pool.acquire(54);
    REQUIRE(&*f == pc);
    REQUIRE(f->headroom() == 54);
    REQUIRE(pool.available() == 0);
  }
  REQUIRE(pool.available() == 1);
  x = frame();
  z = frame();
  w = frame();
  REQUIRE(pool.available() == 4);
  std::set<frame_buffer*> all;
  std::vector<frame> again;
  for (int i = 0; i < 4; ++i) {
    again.push_back(pool.acquire(0));
    REQUIRE(again.back());
    all.insert(&*again.back());
  }
  REQUIRE(all.size() == 4);
  REQUIRE_FALSE(pool.acquire(0));
}

TEST_CASE("a pool of no buffers lends none") {
  buffer_pool pool(0);
  REQUIRE(pool.available() == 0);
  REQUIRE_FALSE(pool.acquire(0));
  REQUIRE(pool.exhausted() == 1);
}

TEST_CASE("a moved frame is given back once") {
  buffer_pool pool(2);
  frame a = pool.acquire(0);
  frame b = std::move(a);
  REQUIRE_FALSE(a);
  REQUIRE(pool.available() == 1);
  b = frame();
  REQUIRE(pool.available() == 2);
  frame c = pool.acquire(0), d = pool.acquire(0);
  REQUIRE(&*c != &*d);
}

}  // namespace
