#include "overlay_service.hpp"

#include "dbus_errors.hpp"
#include "instance_name.hpp"
#include "journal_log.hpp"
#include "sdbus_compat.hpp"
#include "vocabulary.hpp"

#include <chrono>
#include <syslog.h>

namespace overlay::daemon {

namespace {

using vocabulary::Verb;
using vocabulary::verb_info;

long long elapsed_ms(EventLoop::Clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(EventLoop::Clock::now() - since)
        .count();
}

} // namespace

OverlayService::OverlayService(sdbus::IConnection& bus, EventLoop& loop, Authorizer& authorizer,
                               CallLimits& limits, ExecutorPool& executors)
    : AdaptorInterfaces(bus, sdbus_compat::object_path(std::string(vocabulary::kObjectPath))),
      loop_(loop), authorizer_(authorizer), limits_(limits), executors_(executors) {
    registerAdaptor();
}

OverlayService::~OverlayService() {
    try {
        unregisterAdaptor();
    } catch (...) {
    }
    // ReplyGuard destructors answer what is left.
    calls_.clear();
}

void OverlayService::Mount(sdbus::Result<>&& result, std::string instance) {
    accept(Verb::Mount, reply_for<Verb::Mount>(std::move(result)), std::move(instance));
}

void OverlayService::Unmount(sdbus::Result<>&& result, std::string instance) {
    accept(Verb::Unmount, reply_for<Verb::Unmount>(std::move(result)), std::move(instance));
}

void OverlayService::GetStatus(sdbus::Result<bool, std::string, std::vector<std::string>>&& result,
                               std::string instance) {
    accept(Verb::Status, reply_for<Verb::Status>(std::move(result)), std::move(instance));
}

void OverlayService::ListInstances(sdbus::Result<ListReply>&& result) {
    accept(Verb::List, reply_for<Verb::List>(std::move(result)), {});
}

std::string OverlayService::Version() {
    return L4M_VERSION;
}

void OverlayService::Migrate(sdbus::Result<ReportReply>&& result, std::string instance,
                             bool dry_run) {
    accept(Verb::Migrate, reply_for<Verb::Migrate>(std::move(result)), std::move(instance),
           dry_run);
}

void OverlayService::accept(Verb verb, AnyReply reply, std::string instance,
                            bool dry_run) noexcept {
    note_activity();
    std::uint64_t id = 0;
    try {
        id = next_id_++;
        Call& call =
            calls_.try_emplace(id, verb, std::move(instance), std::move(reply)).first->second;
        call.dry_run = dry_run;
        // Valid inside a handler only; read what later steps need now.
        auto current = sdbus_compat::current_call(getObject());
        call.sender = std::move(current.sender);
        call.interactive = current.interactive;

        if (stopping_) {
            finish_error(id, make_error(ErrorCode::Failed, kStoppingMessage), LOG_NOTICE,
                         std::string("refused: ") + kStoppingMessage);
            return;
        }
        // Before anything that costs: a flood is refused here, holding
        // nothing. A connection the authorizer knows is charged to its uid.
        if (auto refused =
                limits_.admit_call(id, call.sender, authorizer_.known_uid(call.sender))) {
            std::visit(
                [&](auto& guard) {
                    guard.fail(
                        make_error(AuthError::LimitsExceeded, "Too many calls: " + *refused));
                },
                call.reply);
            calls_.erase(id);
            note_refusal(*refused);
            return;
        }
        // The only check before authorization: it touches no file.
        if (verb_info(verb).takes_instance) {
            validate_instance_name(call.instance);
        }
        const auto& vi = verb_info(verb);
        authorizer_.check(AuthRequest{call.sender, std::string(vi.polkit_action), call.instance,
                                      call.interactive,
                                      [this, id](uid_t uid) { return limits_.admit_uid(id, uid); }},
                          [this, id](AuthResult result) {
                              // The authorizer's context (in the daemon the bus
                              // thread runs it; or before check() returns): hand
                              // the verdict on as a task, never inside accept().
                              loop_.post([this, id, result = std::move(result)]() mutable {
                                  on_authorized(id, std::move(result));
                              });
                          });
    } catch (const Error& e) {
        finish_error(id, make_error(e.code(), e.what()), LOG_NOTICE,
                     std::string("refused: ") + e.what());
    } catch (...) {
        finish_error(id, error_from_current_exception(), LOG_ERR, "internal error");
    }
}

void OverlayService::on_authorized(std::uint64_t id, AuthResult result) noexcept {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    Call& call = it->second;
    call.uid = result.uid;
    call.pid = result.pid;
    call.polkit = result.polkit;
    const auto& vi = verb_info(call.verb);
    const std::string what = std::string(vi.phrase) +
                             (call.instance.empty() ? std::string() : " instance " + call.instance);
    const std::string why = result.detail.empty() ? std::string() : ": " + result.detail;

    try {
        switch (result.verdict) {
        case AuthResult::Verdict::LimitsExceeded:
            finish_error(id,
                         make_error(AuthError::LimitsExceeded, "Too many calls: " + result.detail),
                         LOG_NOTICE, what + ": refused: " + result.detail);
            return;
        case AuthResult::Verdict::CallerGone:
            // Nobody to answer, and nothing may be done on their behalf.
            log_call(call, LogEvent::None, LOG_NOTICE,
                     what + ": caller left the bus before authorization; "
                            "nothing done",
                     "caller-left");
            std::visit([](auto& guard) { guard.dismiss(); }, call.reply);
            forget(id);
            return;
        case AuthResult::Verdict::Stopping:
            finish_error(id, make_error(ErrorCode::Failed, kStoppingMessage), LOG_NOTICE,
                         what + ": refused: " + kStoppingMessage);
            return;
        case AuthResult::Verdict::InteractiveRequired:
            finish_error(id,
                         make_error(AuthError::InteractiveAuthorizationRequired,
                                    "Interactive authorization is required to " + what),
                         LOG_NOTICE, what + ": denied: interactive authorization required",
                         LogEvent::Denied);
            return;
        case AuthResult::Verdict::Denied:
            // The same answer whether or not the instance exists.
            finish_error(id, make_error(AuthError::AccessDenied, "Not authorized to " + what),
                         LOG_NOTICE, what + ": denied" + why, LogEvent::Denied);
            return;
        case AuthResult::Verdict::Allowed:
            break;
        }
        if (vi.changes_state) {
            log_call(call, LogEvent::Authorized, LOG_INFO, what + ": authorized", "authorized");
        }
        if (stopping_) {
            finish_error(id, make_error(ErrorCode::Failed, kStoppingMessage), LOG_NOTICE,
                         what + ": refused: " + kStoppingMessage);
            return;
        }
        run_operation(id);
    } catch (...) {
        finish_error(id, error_from_current_exception(), LOG_ERR, what + ": internal error");
    }
}

void OverlayService::run_operation(std::uint64_t id) noexcept {
    try {
        const Call& call = calls_.at(id);
        executors_.submit(protocol::Request{call.verb, call.instance, call.dry_run},
                          [this, id](ExecutorOutcome outcome) {
                              loop_.post([this, id, outcome = std::move(outcome)]() mutable {
                                  on_executor_done(id, std::move(outcome));
                              });
                          });
    } catch (...) {
        finish_error(id, error_from_current_exception(), LOG_ERR, "internal error");
    }
}

void OverlayService::on_executor_done(std::uint64_t id, ExecutorOutcome outcome) noexcept {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    const Call& call = it->second;
    const auto& vi = verb_info(call.verb);
    if (const auto* failure = std::get_if<protocol::ExecutorFailure>(&outcome)) {
        const int priority = failure->error == ErrorCode::Failed ? LOG_WARNING : LOG_NOTICE;
        finish_error(id, make_error(failure->error, failure->message), priority,
                     std::string(vi.word) + " failed: " + failure->message);
        return;
    }
    finish_ok(id, std::get<protocol::ExecutorResult>(outcome));
}

void OverlayService::finish_ok(std::uint64_t id, const protocol::ExecutorResult& result) noexcept {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    Call& call = it->second;
    try {
        switch (call.verb) {
        case Verb::Mount:
        case Verb::Unmount: {
            // MountChanged went out already, from the watcher's report
            // that the executors synced before this answer.
            const bool mounted = call.verb == Verb::Mount;
            reply_of<Reply::Nothing>(call.reply).succeed();
            log_call(call, mounted ? LogEvent::Mounted : LogEvent::Unmounted, LOG_INFO,
                     std::string(mounted ? "mounted " : "unmounted ") + call.instance, "ok");
            break;
        }
        case Verb::Status: {
            std::vector<std::string> lowerdirs;
            lowerdirs.reserve(result.lowerdirs.size());
            for (const auto& l : result.lowerdirs) {
                lowerdirs.push_back(dbus_safe(l));
            }
            reply_of<Reply::Status>(call.reply)
                .succeed(result.mounted, dbus_safe(result.merged), lowerdirs);
            log_call(call, LogEvent::Authorized, LOG_DEBUG, "status of " + call.instance, "ok");
            break;
        }
        case Verb::List: {
            ListReply list;
            list.reserve(result.instances.size());
            for (const auto& [name, mounted] : result.instances) {
                list.emplace_back(dbus_safe(name), mounted);
            }
            reply_of<Reply::List>(call.reply).succeed(list);
            log_call(call, LogEvent::Authorized, LOG_DEBUG,
                     "listed " + std::to_string(list.size()) + " instances", "ok");
            break;
        }
        case Verb::Migrate: {
            ReportReply report;
            report.reserve(result.report.size());
            for (const auto& line : result.report) {
                report.push_back(dbus_safe(line));
            }
            // The summary (the last line) goes to the log; the changes, one
            // per line, only to the caller.
            const std::string summary = report.empty() ? std::string() : report.back();
            reply_of<Reply::Report>(call.reply).succeed(report);
            log_call(call, LogEvent::Authorized, LOG_NOTICE,
                     std::string(call.dry_run ? "migration dry run of " : "migrated ") +
                         call.instance + ": " + summary,
                     "ok");
            break;
        }
        }
        forget(id);
    } catch (...) {
        finish_error(id, error_from_current_exception(), LOG_ERR, "internal error");
    }
}

void OverlayService::finish_error(std::uint64_t id, const sdbus::Error& error, int priority,
                                  const std::string& message, LogEvent event) noexcept {
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    Call& call = it->second;
    std::visit([&](auto& guard) { guard.fail(error); }, call.reply);
    std::string outcome = error.getName();
    if (auto dot = outcome.rfind('.'); dot != std::string::npos) {
        outcome.erase(0, dot + 1);
    }
    log_call(call, event, priority, message, outcome);
    forget(id);
}

void OverlayService::log_call(const Call& call, LogEvent event, int priority,
                              const std::string& message,
                              const std::string& outcome) const noexcept {
    try {
        LogRecord r;
        r.priority = priority;
        r.event = event;
        r.message = message;
        r.action = std::string(verb_info(call.verb).word);
        r.instance = call.instance;
        r.caller_bus_name = call.sender;
        r.caller_uid = call.uid;
        r.caller_pid = call.pid;
        r.polkit = call.polkit;
        r.outcome = outcome;
        r.duration_ms = elapsed_ms(call.started);
        log_record(r);
    } catch (...) {
    }
}

void OverlayService::forget(std::uint64_t id) noexcept {
    limits_.release(id);
    calls_.erase(id);
    note_activity();
}

void OverlayService::note_refusal(const std::string& why) noexcept {
    constexpr std::chrono::seconds kEvery{10};
    ++refused_unlogged_;
    const auto now = EventLoop::Clock::now();
    if (now - refusals_logged_ < kEvery) {
        return;
    }
    log_message(LOG_WARNING, "refused " + std::to_string(refused_unlogged_) +
                                 " calls over the limits since the last report; the last: " + why);
    refused_unlogged_ = 0;
    refusals_logged_ = now;
}

void OverlayService::emit_mount_changed(const std::string& instance, bool mounted) noexcept {
    try {
        emitMountChanged(dbus_safe(instance), mounted);
    } catch (const std::exception& e) {
        log_message(LOG_ERR, "cannot emit MountChanged for instance " + instance + ": " + e.what());
    }
}

void OverlayService::on_mount_report(const protocol::MountReport& report) noexcept {
    try {
        if (!report.complete) {
            if (!report.note.empty()) {
                log_message(LOG_WARNING, "mount watcher: " + report.note);
            }
            for (const auto& [name, mounted] : report.instances) {
                if (mounted_) {
                    if (mounted) {
                        mounted_->insert(name);
                    } else {
                        mounted_->erase(name);
                    }
                }
                emit_mount_changed(name, mounted);
            }
            return;
        }
        if (!report.how.empty()) {
            // Which watcher runs where: fanotify mount events (Linux 6.15) or
            // the POLLPRI fallback, over the statmount or the mountinfo table.
            log_message(LOG_INFO, "watching the host's mounts: " + report.how);
        }
        std::set<std::string> now;
        for (const auto& [name, mounted] : report.instances) {
            now.insert(name);
        }
        if (mounted_) {
            // A new watcher: whatever changed while none was watching.
            for (const auto& name : *mounted_) {
                if (!now.contains(name)) {
                    emit_mount_changed(name, false);
                }
            }
            for (const auto& name : now) {
                if (!mounted_->contains(name)) {
                    emit_mount_changed(name, true);
                }
            }
        }
        mounted_ = std::move(now);
    } catch (...) {
        log_message(LOG_ERR, "internal error handling a mount report");
    }
}

void OverlayService::begin_shutdown() {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    authorizer_.cancel_all();
    executors_.cancel_queued();
}

void OverlayService::dismiss_all() noexcept {
    for (auto& [id, call] : calls_) {
        std::visit([](auto& guard) { guard.dismiss(); }, call.reply);
    }
    calls_.clear();
}

} // namespace overlay::daemon
