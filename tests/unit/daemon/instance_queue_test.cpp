#include "instance_queue.hpp"

#include <algorithm>
#include <atomic>
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
