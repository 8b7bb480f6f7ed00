// ByteQueue: FIFO order across appends, partial consumes and compaction.
#include "h2/byte_queue.hpp"

#include <gtest/gtest.h>

#include <string>

namespace portcullis {
namespace {

TEST(ByteQueue, KeepsOrderAcrossAppendsConsumesAndCompaction) {
  ByteQueue q;
  std::string expected;
  std::string got;
  for (int round = 0; round < 200; ++round) {
    const std::string chunk(static_cast<std::size_t>(round % 37 + 1),
                            static_cast<char>('a' + round % 26));
    q.append(chunk.data(), chunk.size());
    expected += chunk;
    const std::size_t take = q.size() / 3 + (round % 2);
    got.append(q.data(), take);
    q.consume(take);
    ASSERT_EQ(std::string(q.data(), q.size()), expected.substr(got.size()));
  }
  got.append(q.data(), q.size());
  q.consume(q.size());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(got, expected);
}

TEST(ByteQueue, AssignAndClear) {
  ByteQueue q;
  q.assign("hello");
  q.consume(2);
  EXPECT_EQ(std::string(q.data(), q.size()), "llo");
  q.clear();
  EXPECT_EQ(q.size(), 0u);
  q.append("x", 1);
  EXPECT_EQ(std::string(q.data(), q.size()), "x");
}

}  // namespace
}  // namespace portcullis
