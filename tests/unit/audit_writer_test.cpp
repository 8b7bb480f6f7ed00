// AuditWriter: the chain it writes verifies; checkpoints by count and time; rotation by size and
// age with retention; restart after a torn tail; failing sinks; concurrency. Real files in a
// temp dir; time only moves through the manual clock (flush() makes the writer act on it).
#include "audit/audit_log.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <boost/json/parse.hpp>

#include "../tools/audit_test_support.hpp"
#include "audit/audit_files.hpp"
#include "audit/audit_verify.hpp"

namespace portcullis {
namespace {

using namespace audit_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

class AuditWriterTest : public ::testing::Test {
 protected:
  AuditConfig config() {
    AuditConfig c;
    c.file_path = dir_ / "audit.jsonl";
    c.key_file = dir_ / "audit-key.pem";
    c.checkpoint_every = 100;
    c.fsync = AuditConfig::Fsync::interval;
    return c;
  }
  std::unique_ptr<AuditWriter> open(const AuditConfig& c) {
    auto w = AuditWriter::open(c, "gw-test", clock_);
    EXPECT_TRUE(w.has_value()) << (w ? "" : w.error());
    return w ? std::move(*w) : nullptr;
  }
  void submit(AuditWriter& w, int from, int to) {
    for (int i = from; i < to; ++i)
      ASSERT_TRUE(w.submit(audit_event_body(sample_event(clock_, i))));
  }
  AuditVerifyReport verify(const std::vector<std::string>& files, bool pin = true) {
    AuditVerifyOptions opt;
    if (pin) {
      auto key = AuditVerifyKey::from_pem_file(dir_ / "audit-key.pem");
      EXPECT_TRUE(key.has_value());
      if (key) opt.pinned.push_back(*key);
    }
    return verify_audit_files(files, opt);
  }
  static std::string problems(const AuditVerifyReport& r) {
    std::string out;
    for (const auto& p : r.problems) out += p.to_string() + "\n";
    return out;
  }
  static json::object parse(const std::string& line) { return json::parse(line).as_object(); }

  TempDir dir_;
  ManualClock clock_;
};

TEST_F(AuditWriterTest, ChainOverManyRecordsVerifiesWithThePinnedKey) {
  auto w = open(config());
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->accepting());
  submit(*w, 0, 1000);
  w->close();
  const AuditStats s = w->stats();
  EXPECT_EQ(s.records_written, 1000u);
  EXPECT_EQ(s.records_dropped, 0u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_EQ(s.checkpoints, 11u);  // every 100 records + the final one
  EXPECT_FALSE(w->accepting());
  EXPECT_FALSE(w->submit("\"time\":\"x\""));

  const auto lines = read_lines(dir_ / "audit.jsonl");
  ASSERT_EQ(lines.size(), 1 + 1000 + 11u);
  const auto genesis = parse(lines[0]);
  EXPECT_EQ(genesis.at("type"), "genesis");
  EXPECT_EQ(genesis.at("seq"), 0);
  EXPECT_EQ(genesis.at("instance"), "gw-test");
  EXPECT_EQ(genesis.at("kid"), json::value(w->kid()));
  EXPECT_EQ(parse(lines[1]).at("type"), "request");
  EXPECT_EQ(parse(lines[1]).at("request_id"), "req-0");
  EXPECT_EQ(parse(lines[101]).at("type"), "checkpoint");
  EXPECT_EQ(parse(lines[101]).at("reason"), "count");
  EXPECT_EQ(parse(lines.back()).at("reason"), "shutdown");

  const auto r = verify({dir_ / "audit.jsonl"});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 1000u);
  EXPECT_EQ(r.checkpoints, 11u);
  EXPECT_TRUE(r.clean_end);
  EXPECT_EQ(r.first_seq, 0u);
  EXPECT_EQ(r.last_seq, 1011u);
}

TEST_F(AuditWriterTest, KeyFileIsCreatedPrivateAndReused) {
  auto w = open(config());
  ASSERT_TRUE(w);
  const std::string kid = w->kid();
  w->close();
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "audit-key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = open(config());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kid(), kid);
  again->close();

  ::chmod((dir_ / "audit-key.pem").c_str(), 0644);
  auto refused = AuditWriter::open(config(), "gw-test", clock_);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().find("chmod 600"), std::string::npos) << refused.error();
}

TEST_F(AuditWriterTest, CheckpointEveryIntervalOnlyWhenSomethingIsUnsigned) {
  AuditConfig c = config();
  c.checkpoint_every = 0;
  c.checkpoint_interval = 10s;
  auto w = open(c);
  ASSERT_TRUE(w);
  submit(*w, 0, 3);
  w->flush();
  EXPECT_EQ(w->stats().checkpoints, 0u);
  clock_.advance(9s);
  w->flush();
  EXPECT_EQ(w->stats().checkpoints, 0u);
  clock_.advance(2s);
  w->flush();
  EXPECT_EQ(w->stats().checkpoints, 1u);
  clock_.advance(60s);  // nothing new: no checkpoint
  w->flush();
  EXPECT_EQ(w->stats().checkpoints, 1u);
  const auto lines = read_lines(dir_ / "audit.jsonl");
  EXPECT_EQ(parse(lines.back()).at("reason"), "interval");
  w->close();
  EXPECT_TRUE(verify({dir_ / "audit.jsonl"}).ok());
}

TEST_F(AuditWriterTest, FsyncIntervalFollowsTheClock) {
  AuditConfig c = config();
  c.fsync_interval = 1s;
  auto w = open(c);
  ASSERT_TRUE(w);
  submit(*w, 0, 5);
  w->flush();
  const auto before = w->stats().fsyncs;
  clock_.advance(2s);
  w->flush();
  EXPECT_EQ(w->stats().fsyncs, before + 1);
  clock_.advance(2s);  // nothing written since: no fsync
  w->flush();
  EXPECT_EQ(w->stats().fsyncs, before + 1);
  w->close();
}

TEST_F(AuditWriterTest, RotatesBySizeAndKeepsOnlyTheNewestFiles) {
  AuditConfig c = config();
  c.max_bytes = 8 * 1024;
  c.keep = 3;
  c.checkpoint_every = 0;
  auto w = open(c);
  ASSERT_TRUE(w);
  submit(*w, 0, 300);
  w->close();
  const AuditStats s = w->stats();
  EXPECT_GT(s.rotations, 10u);
  EXPECT_EQ(s.records_written, 300u);
  EXPECT_EQ(s.retention_errors, 0u);

  const auto files = jsonl_files(dir_.path());
  ASSERT_EQ(files.size(), 4u);  // 3 rotated + the active file
  AuditFileNames names(c.file_path);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(names.is_rotated(fs::path(files[i]).filename().string())) << files[i];
    const auto lines = read_lines(files[i]);
    // Every rotated file starts with a rotate record and ends with a signed checkpoint, and is
    // at most one record (plus that checkpoint) over max_bytes.
    EXPECT_EQ(parse(lines.front()).at("type"), "rotate");
    EXPECT_EQ(parse(lines.back()).at("reason"), "rotate");
    EXPECT_LT(fs::file_size(files[i]), c.max_bytes + 2048);
  }
  EXPECT_EQ(files[3], dir_ / "audit.jsonl");

  // The retained files verify; the chain starts after the deleted files (a note, not an error).
  const auto r = verify(files);
  EXPECT_TRUE(r.ok()) << problems(r);
  ASSERT_FALSE(r.notes.empty());
  bool noted = false;
  for (const auto& n : r.notes) noted |= n.find("removed by retention") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST_F(AuditWriterTest, KeepZeroKeepsEveryFileAndTheWholeChainVerifies) {
  AuditConfig c = config();
  c.max_bytes = 4 * 1024;
  c.keep = 0;
  auto w = open(c);
  ASSERT_TRUE(w);
  submit(*w, 0, 100);
  w->close();
  auto files = jsonl_files(dir_.path());
  EXPECT_EQ(files.size(), w->stats().rotations + 1);
  std::reverse(files.begin(), files.end());  // any order: verify orders by the chain
  const auto r = verify(files);
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 100u);
  EXPECT_EQ(r.first_seq, 0u);
}

TEST_F(AuditWriterTest, RotatesByAgeOnlyWhenTheFileHasRecords) {
  AuditConfig c = config();
  c.max_age = 3600s;
  auto w = open(c);
  ASSERT_TRUE(w);
  submit(*w, 0, 5);
  w->flush();
  clock_.advance(30min);
  w->flush();
  EXPECT_EQ(w->stats().rotations, 0u);
  clock_.advance(31min);
  w->flush();
  EXPECT_EQ(w->stats().rotations, 1u);
  clock_.advance(2h);  // the new file only has its rotate record (and a checkpoint)
  w->flush();
  EXPECT_EQ(w->stats().rotations, 1u);
  w->close();
  const auto r = verify(jsonl_files(dir_.path()));
  EXPECT_TRUE(r.ok()) << problems(r);
}

TEST_F(AuditWriterTest, AnIdleFileIsNotRotatedByAge) {
  AuditConfig c = config();
  c.max_age = 3600s;
  auto w = open(c);
  ASSERT_TRUE(w);
  clock_.advance(5h);
  w->flush();
  EXPECT_EQ(w->stats().rotations, 0u);
  w->close();
  EXPECT_EQ(jsonl_files(dir_.path()).size(), 1u);
}

TEST_F(AuditWriterTest, RestartAppendsAStartRecordThatContinuesTheChain) {
  auto w = open(config());
  submit(*w, 0, 10);
  w->close();
  auto again = open(config());
  submit(*again, 10, 20);
  again->close();
  const auto lines = read_lines(dir_ / "audit.jsonl");
  const auto start = parse(lines[12]);  // genesis, 10 records, shutdown checkpoint, start
  EXPECT_EQ(start.at("type"), "start");
  EXPECT_EQ(start.at("cause"), "startup");
  EXPECT_EQ(start.at("seq"), 12);
  const auto r = verify({dir_ / "audit.jsonl"});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 20u);
}

TEST_F(AuditWriterTest, StartAfterATornTailMovesTheFileAsideAndAccountsForIt) {
  auto w = open(config());
  submit(*w, 0, 10);
  w->close();
  const std::string active = dir_ / "audit.jsonl";
  const std::string intact = read_file(active);
  const std::string torn = "{\"seq\":12,\"prev\":\"abc\",\"type\":\"request\",\"time\":\"20";
  write_file(active, intact + torn);  // a crash in the middle of a write

  auto again = open(config());
  ASSERT_TRUE(again);
  submit(*again, 10, 15);
  again->close();

  const auto files = jsonl_files(dir_.path());
  ASSERT_EQ(files.size(), 2u);
  const std::string aside = files[0] == active ? files[1] : files[0];
  EXPECT_EQ(read_file(aside), intact + torn) << "the torn file is kept untouched";
  const auto lines = read_lines(active);
  const auto start = parse(lines[0]);
  EXPECT_EQ(start.at("type"), "start");
  EXPECT_EQ(start.at("seq"), 12);
  const auto& t = start.at("torn").as_object();
  EXPECT_EQ(t.at("file"), json::value(fs::path(aside).filename().string()));
  EXPECT_EQ(t.at("offset"), intact.size());
  EXPECT_EQ(t.at("length"), torn.size());

  const auto r = verify(files);
  EXPECT_TRUE(r.ok()) << problems(r);
  bool noted = false;
  for (const auto& n : r.notes) noted |= n.find("accounted for") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(r.requests, 15u);
}

TEST_F(AuditWriterTest, RefusesToContinueAFileThatIsNotAnAuditLog) {
  write_file(dir_ / "audit.jsonl", "hello\nworld\n");
  auto w = AuditWriter::open(config(), "gw-test", clock_);
  ASSERT_FALSE(w.has_value());
  EXPECT_NE(w.error().find("not an audit record"), std::string::npos) << w.error();
}

TEST_F(AuditWriterTest, UnwritableDirectoryIsNotAcceptingCountsAndRecovers) {
  AuditConfig c = config();
  write_file(dir_ / "logs", "a regular file where the directory should be");
  c.file_path = dir_ / "logs/audit.jsonl";
  auto w = open(c);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->accepting());
  AuditStats s = w->stats();
  EXPECT_FALSE(s.primary_ok);
  EXPECT_GE(s.write_errors, 1u);
  EXPECT_NE(s.last_error.find("logs/audit.jsonl"), std::string::npos) << s.last_error;
  EXPECT_FALSE(w->submit(audit_event_body(sample_event(clock_, 1))));
  EXPECT_FALSE(w->submit(audit_event_body(sample_event(clock_, 2))));
  EXPECT_EQ(w->stats().records_dropped, 2u);

  clock_.advance(2s);  // still failing: one more error counted per retry
  w->flush();
  EXPECT_GE(w->stats().write_errors, 2u);
  EXPECT_FALSE(w->accepting());

  fs::remove(dir_ / "logs");
  fs::create_directory(dir_ / "logs");
  clock_.advance(2s);
  w->flush();
  EXPECT_TRUE(w->accepting());
  submit(*w, 3, 6);
  w->close();
  s = w->stats();
  EXPECT_EQ(s.records_written, 3u);
  EXPECT_EQ(s.records_dropped, 2u);
  const auto r = verify({c.file_path});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.lost, 2u) << "the loss is written into the log as a \"lost\" record";
}

TEST_F(AuditWriterTest, WriteErrorMidFileTruncatesBackAndRecovers) {
  auto w = open(config());
  ASSERT_TRUE(w);
  submit(*w, 0, 3);
  w->flush();
  const auto size = fs::file_size(dir_ / "audit.jsonl");

  // EFBIG on the next write: RLIMIT_FSIZE just above the current size (SIGXFSZ ignored).
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGXFSZ, &ignore, &old);
  rlimit saved{};
  ::getrlimit(RLIMIT_FSIZE, &saved);
  rlimit tight = saved;
  tight.rlim_cur = size + 100;
  ::setrlimit(RLIMIT_FSIZE, &tight);
  ASSERT_TRUE(w->submit(audit_event_body(sample_event(clock_, 3))));
  w->flush();
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &old, nullptr);

  AuditStats s = w->stats();
  EXPECT_FALSE(w->accepting());
  EXPECT_EQ(s.write_errors, 1u);
  EXPECT_EQ(s.records_dropped, 1u);
  EXPECT_EQ(fs::file_size(dir_ / "audit.jsonl"), size) << "the partial write was taken back";

  clock_.advance(2s);
  w->flush();
  EXPECT_TRUE(w->accepting());
  submit(*w, 4, 6);
  w->close();
  const auto r = verify({dir_ / "audit.jsonl"});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 5u);
  EXPECT_EQ(r.lost, 1u);
}

TEST_F(AuditWriterTest, FullQueueDropsCountsAndRecordsTheLoss) {
  AuditConfig c = config();
  c.queue_capacity = 4;
  auto w = open(c);
  ASSERT_TRUE(w);
  std::uint64_t accepted = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    (w->submit(audit_event_body(sample_event(clock_, i))) ? accepted : refused)++;
  }
  w->close();
  const AuditStats s = w->stats();
  EXPECT_EQ(s.records_written, accepted);
  EXPECT_EQ(s.records_dropped, refused);
  const auto r = verify({c.file_path});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, accepted);
  EXPECT_EQ(r.lost, refused);
}

TEST_F(AuditWriterTest, FourThreadsSubmittingTenThousandEachGiveExactlyFortyThousand) {
  auto w = open(config());
  ASSERT_TRUE(w);
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        if (!w->submit(audit_event_body(sample_event(clock_, t * 10000 + i)))) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  w->close();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(w->stats().records_written, 40000u);
  const auto r = verify({dir_ / "audit.jsonl"});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 40000u);
  // Every request id exactly once.
  std::vector<bool> seen(40000);
  for (const auto& line : read_lines(dir_ / "audit.jsonl")) {
    const auto o = parse(line);
    if (o.at("type") != "request") continue;
    const std::string id(o.at("request_id").as_string());
    const int n = std::stoi(id.substr(4));
    EXPECT_FALSE(seen[n]) << id;
    seen[n] = true;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 40000);
}

TEST_F(AuditWriterTest, ASecondWriterOnTheSameFileWaitsForTheFirst) {
  auto first = open(config());
  ASSERT_TRUE(first);
  submit(*first, 0, 3);
  auto second = open(config());  // an overlapping restart
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->accepting());
  EXPECT_NE(second->stats().last_error.find("another process"), std::string::npos)
      << second->stats().last_error;
  submit(*first, 3, 6);
  first->close();
  clock_.advance(2s);
  second->flush();
  EXPECT_TRUE(second->accepting());
  submit(*second, 6, 9);
  second->close();
  const auto r = verify({dir_ / "audit.jsonl"});
  EXPECT_TRUE(r.ok()) << problems(r);
  EXPECT_EQ(r.requests, 9u);
}

TEST_F(AuditWriterTest, NeedsASinkAndAUsableConfig) {
  AuditConfig c;
  EXPECT_FALSE(AuditWriter::open(c, "gw", clock_).has_value());
  c = config();
  c.queue_capacity = 0;
  EXPECT_FALSE(AuditWriter::open(c, "gw", clock_).has_value());
  c = config();
  c.redis_address = "[::1";
  EXPECT_FALSE(AuditWriter::open(c, "gw", clock_).has_value());
}

TEST_F(AuditWriterTest, WithoutAKeyFileEachProcessHasItsOwnKey) {
  AuditConfig c = config();
  c.key_file.clear();
  auto a = open(c);
  const std::string kid_a = a->kid();
  submit(*a, 0, 3);
  a->close();
  auto b = open(c);
  EXPECT_NE(b->kid(), kid_a);
  submit(*b, 3, 6);
  b->close();
  // Without a pin the log verifies (and says the key changed); there is nothing to pin.
  const auto r = verify({c.file_path}, false);
  EXPECT_TRUE(r.ok()) << problems(r);
  bool noted = false;
  for (const auto& n : r.notes) noted |= n.find("key changed") != std::string::npos;
  EXPECT_TRUE(noted);
}

}  // namespace
}  // namespace portcullis
