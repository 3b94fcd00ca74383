// Pipeline schedules as data (1F1B, DualPipe) run by the simulator: bubbles and activation memory
// against the V3 report's Table 2, and the simulator's checks on broken schedules.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "dist/pipeline_schedule.h"
#include "dist/pipeline_sim.h"

using namespace seek;
using namespace seek::dist;

namespace {

// Cost sets: uniform; an overlapped pair cheaper than its parts (V3's point); uneven F/B/W.
const PipeCosts kCosts[] = {{1, 1, 1, 0, 0}, {1, 1, 1, 2.5, 0}, {2, 1.5, 1, 4, 0}, {1.2, 1.3, 0.7, 2.9, 0}};

int max_of(const std::vector<int>& v) { return *std::max_element(v.begin(), v.end()); }

std::string error_of(const PipeSchedule& s) {
  try {
    simulate_pipeline(s, PipeCosts{});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// 1F1B: every rank idles exactly (P-1)(F+B+W) (its full backward is B+W) and holds at most
// min(P, M) micro-batches' activations (rank 0); the step is M(F+B+W) plus the bubble.
TEST(Pipeline, OneFOneBHasTheReportsBubbleAndMemory) {
  for (int P : {1, 2, 4, 8, 16})
    for (int M : {P, 2 * P, 4 * P + 1})
      for (const PipeCosts& c : kCosts) {
        const PipeSchedule s = schedule_1f1b(P, M);
        const PipeSimResult r = simulate_pipeline(s, c);
        const double bubble = (P - 1) * (c.F + c.B + c.W);
        EXPECT_DOUBLE_EQ(bubble_formula(s, c), bubble);
        for (int k = 0; k < P; ++k) EXPECT_NEAR(r.idle[size_t(k)], bubble, 1e-9) << "P" << P << " M" << M << " rank " << k;
        EXPECT_NEAR(r.step_time, M * (c.F + c.B + c.W) + bubble, 1e-9);
        EXPECT_EQ(r.peak_in_flight[0], std::min(P, M));
        EXPECT_EQ(s.chunks_per_rank(), 1);
      }
}

// DualPipe, the published order of ops per rank: 2× the parameters (two chunks per rank) and
// P+1 micro-batches of activations at the peak, exactly the report's Table 2. Its bubble, with an
// overlapped pair's outputs available when the pair ends, lies between the report's
// (P/2-1)(F&B+B-3W) and one input backward B per half pipeline more (the upper end for uniform
// chunks), does not grow with the micro-batches, and is under half of 1F1B's.
TEST(Pipeline, DualPipeHasTheReportsMemoryAndAFractionOf1F1BsBubble) {
  for (int P : {2, 4, 8, 16})
    for (const PipeCosts& c : kCosts) {
      double first = -1;
      for (int M : {2 * P, 2 * P + 2, 4 * P, 10 * P}) {
        const PipeSchedule s = schedule_dualpipe(P, M);
        const PipeSimResult r = simulate_pipeline(s, c);  // throws on any missing, doubled or stuck op
        const double report = bubble_formula(s, c);
        EXPECT_GE(r.bubble, report - 1e-9) << "P" << P << " M" << M;
        EXPECT_LE(r.bubble, report + (P / 2 - 1) * c.B + 1e-9) << "P" << P << " M" << M;
        if (first < 0) first = r.bubble;
        EXPECT_NEAR(r.bubble, first, 1e-9) << "P" << P << " M" << M << ": the bubble grew with M";
        EXPECT_EQ(max_of(r.peak_in_flight), P + 1) << "P" << P << " M" << M;
        EXPECT_EQ(s.chunks_per_rank(), 2);
        if (P > 2) EXPECT_LT(r.bubble, bubble_formula(schedule_1f1b(P, M), c) / 2);
        for (int k = 0; k < P; ++k) EXPECT_NEAR(r.step_time - r.idle[size_t(k)], r.busy[size_t(k)], 1e-9);
      }
    }
  // Uniform chunks (F = B = W, F&B = F+B+W): exactly one B per half pipeline above Table 2.
  const PipeCosts u{1, 1, 1, 3, 0};
  EXPECT_NEAR(simulate_pipeline(schedule_dualpipe(16, 32), u).bubble, 7 * (3 + 2 - 3), 1e-9);
}

TEST(Pipeline, DualPipeNeedsAnEvenPipelineAndTwiceItsMicroBatches) {
  EXPECT_THROW(schedule_dualpipe(3, 12), Error);
  EXPECT_THROW(schedule_dualpipe(4, 6), Error);
  EXPECT_THROW(schedule_dualpipe(4, 9), Error);
  EXPECT_THROW(make_schedule("gpipe", 4, 8), Error);
  EXPECT_NO_THROW(make_schedule("dualpipe", 4, 8));
}

// A broken schedule is an error naming what is wrong, never a wrong number.
TEST(Pipeline, TheSimulatorRejectsBrokenSchedules) {
  PipeSchedule s = schedule_1f1b(4, 8);
  PipeSchedule missing = s;
  missing.ranks[0].pop_back();  // the last backward at stage 0: nothing waits for it
  EXPECT_NE(error_of(missing).find("micro-batch 0.7 never gets its backward at stage 0"), std::string::npos) << error_of(missing);
  PipeSchedule twice = s;
  twice.ranks[1].push_back(twice.ranks[1].front());
  EXPECT_NE(error_of(twice).find("runs twice"), std::string::npos) << error_of(twice);
  PipeSchedule stuck = s;  // rank 0 starts with the backward of a micro-batch it has not forwarded
  std::swap(stuck.ranks[0].front(), stuck.ranks[0].back());
  EXPECT_NE(error_of(stuck).find("deadlock"), std::string::npos) << error_of(stuck);
  PipeSchedule w = s;
  w.ranks[0].insert(w.ranks[0].begin(), PipeOp{PipeKind::Weight});
  EXPECT_NE(error_of(w).find("no split backward queued"), std::string::npos) << error_of(w);
  PipeSchedule out = s;
  out.ranks[0][0].micro = 8;
  EXPECT_NE(error_of(out).find("outside"), std::string::npos) << error_of(out);
}

TEST(Pipeline, DescribeNamesEveryOp) {
  const std::string d = describe(schedule_dualpipe(4, 8));
  EXPECT_NE(d.find("rank  0: F0.0 F0.1 F0.2 F1.0 B1.0s W F1.1 FB(0.3,1.1)"), std::string::npos) << d;
  EXPECT_NE(d.find("rank  3: F1.0 F1.1 F1.2 F0.0 B0.0s W"), std::string::npos) << d;
}

// Stages of different costs (a runtime's measured ones): each op costs its stage's. One
// micro-batch through 2 stages of 1F1B runs F0, F1, B1, B0 one after the other; DualPipe's
// stage costs equal the uniform run's when they are all the same.
TEST(Pipeline, EachStageCanCostItsOwn) {
  PipeCosts a, b;
  a.F = 1.0, a.B = 2.0, a.W = 0.5;
  b.F = 3.0, b.B = 5.0, b.W = 0.25;
  const PipeSimResult r = simulate_pipeline(schedule_1f1b(2, 1), std::vector<PipeCosts>{a, b});
  EXPECT_DOUBLE_EQ(r.step_time, 1.0 + 3.0 + 5.25 + 2.5);
  EXPECT_DOUBLE_EQ(r.idle[0], 3.0 + 5.25);
  EXPECT_DOUBLE_EQ(r.idle[1], 1.0 + 2.5);
  const PipeSchedule d = schedule_dualpipe(4, 8);
  const PipeSimResult u = simulate_pipeline(d, a), s = simulate_pipeline(d, std::vector<PipeCosts>(4, a));
  EXPECT_EQ(u.idle, s.idle);
  EXPECT_EQ(u.end, s.end);
  // A slower last stage (the head and the MTP modules) makes the others wait longer.
  std::vector<PipeCosts> slow_last(4, a);
  slow_last[3].F = 2.0;
  EXPECT_GT(simulate_pipeline(d, slow_last).step_time, u.step_time);
  EXPECT_THROW(simulate_pipeline(d, std::vector<PipeCosts>(3, a)), Error);
}
