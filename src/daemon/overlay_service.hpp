// The org.left4me.Overlay1 object: the handlers of the generated adaptor.
// Each call goes limits -> name check -> authorization (Authorizer, its
// GLib context run by the bus loop) -> executor (ExecutorPool worker) ->
// reply and log, the last step back on the bus thread. The handlers return
// at once: the bus thread never waits on polkit or on an executor.
// MountChanged follows the watching executor's reports of the host mount
// table, whoever changed it.
#pragma once

#include "authorizer.hpp"
#include "call_limits.hpp"
#include "event_loop.hpp"
#include "executor_pool.hpp"
#include "journal_log.hpp"
#include "overlay1_adaptor.hpp"
#include "reply_guard.hpp"
#include "vocabulary.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace overlay::daemon {

class OverlayService final : public sdbus::AdaptorInterfaces<org::left4me::Overlay1_adaptor> {
  public:
    // All references must outlive the service; all methods run on the bus
    // thread.
    OverlayService(sdbus::IConnection& bus, EventLoop& loop, Authorizer& authorizer,
                   CallLimits& limits, ExecutorPool& executors);
    // Unregisters the object, then answers whatever is left with Failed
    // "service is stopping". Destroy before the connection.
    ~OverlayService();

    // SIGTERM: new calls are refused, pending authorizations and queued
    // operations end with Failed "service is stopping"; running operations
    // finish and are answered normally.
    void begin_shutdown();
    // The bus is gone: nothing can be answered any more.
    void dismiss_all() noexcept;

    std::size_t pending() const noexcept { return calls_.size(); }
    EventLoop::Clock::time_point last_activity() const noexcept { return last_activity_; }
    void note_activity() noexcept { last_activity_ = EventLoop::Clock::now(); }

    // The watching executor's report: MountChanged for each change. The
    // first complete report only sets what is known (nothing changed from
    // the caller's view); a later one, from a restarted executor, signals
    // every difference.
    void on_mount_report(const protocol::MountReport& report) noexcept;

  private:
    using Verb = vocabulary::Verb;
    using ListReply = std::vector<sdbus::Struct<std::string, bool>>;
    using ReportReply = std::vector<std::string>;
    using Reply = vocabulary::Reply;
    // One alternative per vocabulary::Reply, in its order (checked below):
    // a verb's row of the verb table says which one its calls hold.
    using AnyReply =
        std::variant<ReplyGuard<>, ReplyGuard<bool, std::string, std::vector<std::string>>,
                     ReplyGuard<ListReply>, ReplyGuard<ReportReply>>;
    template <Reply R>
    using ReplyOf = std::variant_alternative_t<static_cast<std::size_t>(R), AnyReply>;
    static_assert(std::variant_size_v<AnyReply> == static_cast<std::size_t>(Reply::Report) + 1);
    static_assert(std::is_same_v<ReplyOf<Reply::Nothing>, ReplyGuard<>>);
    static_assert(std::is_same_v<ReplyOf<Reply::Status>,
                                 ReplyGuard<bool, std::string, std::vector<std::string>>>);
    static_assert(std::is_same_v<ReplyOf<Reply::List>, ReplyGuard<ListReply>>);
    static_assert(std::is_same_v<ReplyOf<Reply::Report>, ReplyGuard<ReportReply>>);

    // The reply of a call to `V`, as its row of the verb table says.
    template <Verb V, typename Result> static AnyReply reply_for(Result&& result) {
        constexpr Reply kReply = vocabulary::verb_info(V).reply;
        return AnyReply(std::in_place_index<static_cast<std::size_t>(kReply)>,
                        std::forward<Result>(result));
    }
    template <Reply R> static ReplyOf<R>& reply_of(AnyReply& reply) {
        return std::get<static_cast<std::size_t>(R)>(reply);
    }

    struct Call {
        Call(Verb v, std::string name, AnyReply r)
            : verb(v), instance(std::move(name)), reply(std::move(r)) {}
        Verb verb;
        std::string instance;
        AnyReply reply;
        EventLoop::Clock::time_point started = EventLoop::Clock::now();
        std::string sender;
        bool interactive = false;
        bool dry_run = false; // Migrate
        std::optional<uid_t> uid;
        std::optional<pid_t> pid;
        std::string polkit;
    };
    using Verdict = AuthResult::Verdict;

    void Mount(sdbus::Result<>&& result, std::string instance) override;
    void Unmount(sdbus::Result<>&& result, std::string instance) override;
    void GetStatus(sdbus::Result<bool, std::string, std::vector<std::string>>&& result,
                   std::string instance) override;
    void ListInstances(sdbus::Result<ListReply>&& result) override;
    void Migrate(sdbus::Result<ReportReply>&& result, std::string instance, bool dry_run) override;
    std::string Version() override;

    void accept(Verb verb, AnyReply reply, std::string instance, bool dry_run = false) noexcept;
    void on_authorized(std::uint64_t id, AuthResult result) noexcept;
    void run_operation(std::uint64_t id) noexcept;
    void emit_mount_changed(const std::string& instance, bool mounted) noexcept;
    void on_executor_done(std::uint64_t id, ExecutorOutcome outcome) noexcept;

    // Answers, logs and forgets call `id`: a failure, or (event Denied)
    // polkit's refusal.
    void finish_error(std::uint64_t id, const sdbus::Error& error, int priority,
                      const std::string& message, LogEvent event = LogEvent::Failed) noexcept;
    void finish_ok(std::uint64_t id, const protocol::ExecutorResult& result) noexcept;
    void log_call(const Call& call, LogEvent event, int priority, const std::string& message,
                  const std::string& outcome) const noexcept;
    void forget(std::uint64_t id) noexcept;

    EventLoop& loop_;
    Authorizer& authorizer_;
    CallLimits& limits_;
    ExecutorPool& executors_;
    std::map<std::uint64_t, Call> calls_;
    std::optional<std::set<std::string>> mounted_; // from the watcher's reports
    // Refusals over the limits are logged as a count, at most every few
    // seconds: a line per refused call would be the flood's amplifier.
    std::uint64_t refused_unlogged_ = 0;
    EventLoop::Clock::time_point refusals_logged_{};
    void note_refusal(const std::string& why) noexcept;
    std::uint64_t next_id_ = 1;
    bool stopping_ = false;
    EventLoop::Clock::time_point last_activity_ = EventLoop::Clock::now();
};

} // namespace overlay::daemon
