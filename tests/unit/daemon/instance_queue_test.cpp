#include "instance_queue.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <set>
#include <vector>

using overlay::daemon::InstanceQueue;

namespace {

// A latch the test opens by hand: jobs wait on it, so the test decides what
// is running at each moment instead of guessing from time.
class Gate {
  public:
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return open_; });
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

class Recorder {
  public:
    void started(const std::string& what, std::size_t worker) {
        std::lock_guard lock(mutex_);
        order_.push_back(what);
        workers_.insert(worker);
        ++running_;
        max_running_ = std::max(max_running_, running_);
        cv_.notify_all();
    }
    void finished() {
        std::lock_guard lock(mutex_);
        --running_;
        ++done_;
        cv_.notify_all();
    }
    void wait_started(std::size_t n) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return order_.size() >= n; });
    }
    // Whether n jobs have started within `limit` (generous: a missed
    // wake-up, not a slow machine, is what makes it false).
    bool started_within(std::size_t n, std::chrono::seconds limit) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [&] { return order_.size() >= n; });
    }
    void wait_done(std::size_t n) {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return done_ >= n; });
    }
    std::vector<std::string> order() {
        std::lock_guard lock(mutex_);
        return order_;
    }
    std::size_t max_running() {
        std::lock_guard lock(mutex_);
        return max_running_;
    }
    std::set<std::size_t> workers() {
        std::lock_guard lock(mutex_);
        return workers_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::string> order_;
    std::set<std::size_t> workers_;
    std::size_t running_ = 0, max_running_ = 0, done_ = 0;
};

InstanceQueue::Job job(Recorder& r, Gate& gate, std::string what, std::atomic<int>* cancelled) {
    return {[&r, &gate, what](std::size_t worker) {
                r.started(what, worker);
                gate.wait();
                r.finished();
            },
            [cancelled] { ++*cancelled; }};
}

// Opens the gates when a test ends, also by a failed ASSERT: declared after
// the queue, it runs before the queue's stop(), which waits for running jobs.
struct OpenAtEnd {
    std::vector<Gate*> gates;
    ~OpenAtEnd() {
        for (Gate* g : gates) {
            g->open();
        }
    }
};

// Long enough that no idle check comes during a test: a waiting worker
// looks at the queue only when woken.
constexpr std::chrono::hours kNoIdleCheck{1};
constexpr std::chrono::seconds kDeadline{60};

} // namespace

TEST(InstanceQueue, OneJobPerKeyAtATimeInArrivalOrderOthersInParallel) {
    Recorder r;
    Gate gate;
    std::atomic<int> cancelled{0};
    std::vector<std::size_t> started_workers;
    std::mutex m;
    InstanceQueue q(2, [&](std::size_t i) {
        std::lock_guard lock(m);
        started_workers.push_back(i);
    });
    q.submit("a", job(r, gate, "a1", &cancelled));
    q.submit("a", job(r, gate, "a2", &cancelled));
    q.submit("b", job(r, gate, "b1", &cancelled));
    // a1 and b1 run together (two workers: either may start first); a2
    // waits for a1 though a worker would be free.
    r.wait_started(2);
    auto first_two = r.order();
    std::sort(first_two.begin(), first_two.end());
    EXPECT_EQ(first_two, (std::vector<std::string>{"a1", "b1"}));
    gate.open();
    r.wait_done(3);
    ASSERT_EQ(r.order().size(), 3U);
    EXPECT_EQ(r.order()[2], "a2");
    EXPECT_EQ(r.max_running(), 2U);
    q.stop();
    EXPECT_EQ(cancelled, 0);
    std::lock_guard lock(m);
    std::sort(started_workers.begin(), started_workers.end());
    EXPECT_EQ(started_workers, (std::vector<std::size_t>{0, 1}));
}

TEST(InstanceQueue, NeverMoreJobsAtOnceThanWorkers) {
    Recorder r;
    Gate gate;
    std::atomic<int> cancelled{0};
    InstanceQueue q(3);
    for (int i = 0; i < 12; ++i) {
        q.submit("k" + std::to_string(i), job(r, gate, "k" + std::to_string(i), &cancelled));
    }
    r.wait_started(3);
    gate.open();
    r.wait_done(12);
    EXPECT_EQ(r.max_running(), 3U);
    EXPECT_EQ(r.workers(), (std::set<std::size_t>{0, 1, 2}));
}

TEST(InstanceQueue, StopCancelsWhatHasNotStartedAndFinishesWhatRuns) {
    Recorder r;
    Gate gate;
    std::atomic<int> cancelled{0};
    InstanceQueue q(1);
    q.submit("a", job(r, gate, "a1", &cancelled));
    q.submit("b", job(r, gate, "b1", &cancelled));
    q.submit("c", job(r, gate, "c1", &cancelled));
    r.wait_started(1);
    q.cancel_queued();
    EXPECT_EQ(cancelled, 2);
    // Refused from now on, with cancel(), not run.
    q.submit("d", job(r, gate, "d1", &cancelled));
    EXPECT_EQ(cancelled, 3);
    gate.open();
    q.stop();
    EXPECT_EQ(r.order(), (std::vector<std::string>{"a1"}));
}

TEST(InstanceQueue, IdleWorkersAreCheckedOn) {
    std::atomic<int> idle_calls{0};
    InstanceQueue q(1, {}, [&](std::size_t) { ++idle_calls; });
    // The idle hook is how dead executors get replaced between calls:
    // it must come without any job arriving. Bounded: 30 s.
    for (int i = 0; i < 3000 && idle_calls == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GT(idle_calls, 0);
}

// A worker waits until woken (one per job that can start, not all of
// them): a job of another instance submitted while one runs must wake the
// idle worker, not wait for an idle check.
TEST(InstanceQueue, AJobOfAnotherInstanceWakesAnIdleWorker) {
    Recorder r;
    Gate gate;
    std::atomic<int> cancelled{0};
    InstanceQueue q(2, {}, {}, kNoIdleCheck);
    OpenAtEnd open_at_end{{&gate}};
    q.submit("a", job(r, gate, "a1", &cancelled));
    ASSERT_TRUE(r.started_within(1, kDeadline));
    q.submit("b", job(r, gate, "b1", &cancelled));
    ASSERT_TRUE(r.started_within(2, kDeadline)) << "b1 was not started while a1 ran";
    gate.open();
    r.wait_done(2);
    EXPECT_EQ(r.workers(), (std::set<std::size_t>{0, 1}));
}

// Several jobs submitted at once: each must get a worker of its own,
// whether the workers were waiting (each submit wakes one; a worker that
// takes one wakes the next when more can start) or had not yet looked at
// the queue (which of the two happens is the scheduler's choice).
TEST(InstanceQueue, JobsSubmittedTogetherStartOnEveryIdleWorker) {
    Recorder r;
    Gate gate;
    std::atomic<int> cancelled{0};
    InstanceQueue q(3, {}, {}, kNoIdleCheck);
    OpenAtEnd open_at_end{{&gate}};
    for (int i = 0; i < 3; ++i) {
        q.submit("k" + std::to_string(i), job(r, gate, "k" + std::to_string(i), &cancelled));
    }
    ASSERT_TRUE(r.started_within(3, kDeadline)) << r.order().size() << " of 3 started";
    // One more while all three run: taken by the first worker to finish.
    q.submit("k3", job(r, gate, "k3", &cancelled));
    gate.open();
    ASSERT_TRUE(r.started_within(4, kDeadline));
    r.wait_done(4);
    EXPECT_EQ(r.max_running(), 3U);
}

// A job of an instance whose job runs wakes nobody when submitted; when
// the running one ends, the next of that instance must still start (the
// worker that ran it takes it), while the other worker is busy elsewhere.
TEST(InstanceQueue, TheNextJobOfAnInstanceStartsWhenItsRunningOneEnds) {
    Recorder r;
    Gate first, rest;
    std::atomic<int> cancelled{0};
    InstanceQueue q(2, {}, {}, kNoIdleCheck);
    OpenAtEnd open_at_end{{&first, &rest}};
    q.submit("a", job(r, first, "a1", &cancelled));
    ASSERT_TRUE(r.started_within(1, kDeadline));
    q.submit("a", job(r, rest, "a2", &cancelled));
    q.submit("b", job(r, rest, "b1", &cancelled));
    ASSERT_TRUE(r.started_within(2, kDeadline)) << "b1 was not started while a1 ran";
    EXPECT_EQ(r.order(), (std::vector<std::string>{"a1", "b1"}));
    first.open(); // a1 ends; b1 still runs
    ASSERT_TRUE(r.started_within(3, kDeadline)) << "a2 was not started after a1 ended";
    EXPECT_EQ(r.order()[2], "a2");
    rest.open();
    r.wait_done(3);
    EXPECT_EQ(cancelled, 0);
}
