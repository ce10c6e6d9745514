#include "command_line.hpp"

#include "error.hpp"
#include "instance_name.hpp"
#include "output.hpp"

namespace overlay::ctl {

const char* const kHelpText =
    "Usage: left4me-overlayctl [OPTIONS] mount|unmount|status NAME\n"
    "       left4me-overlayctl [OPTIONS] [list]\n"
    "       left4me-overlayctl [OPTIONS] migrate [--dry-run] NAME\n"
    "\n"
    "Mounts, unmounts and shows the overlays of left4me instances through the\n"
    "D-Bus service org.left4me.Overlay1 (left4me-overlayd). Mount and unmount are\n"
    "authorized by polkit: when a password is needed and standard input is a\n"
    "terminal, it is asked for there.\n"
    "\n"
    "Commands:\n"
    "  mount NAME        mount the overlay of instance NAME\n"
    "  unmount NAME      unmount it (umount is accepted too)\n"
    "  status NAME       show whether NAME is mounted, its mount point and lowerdirs\n"
    "  list              list the instances and whether each is mounted (the\n"
    "                    default command)\n"
    "  migrate NAME      convert the upper directory NAME used under fuse-overlayfs\n"
    "                    to the kernel's format, and verify it (administrators)\n"
    "\n"
    "Options:\n"
    "  --no-ask-password do not ask for a password: fail if polkit wants one\n"
    "  --json[=MODE]     print status and list as JSON: short (one line, the\n"
    "                    default MODE), pretty (indented) or off\n"
    "  --no-legend       print no column header in list\n"
    "  --dry-run         migrate: print what would change, change nothing\n"
    "  -h, --help        print this help and exit\n"
    "  --version         print the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0  success (status: also when the instance is not mounted)\n"
    "  1  the service refused or failed the operation\n"
    "  2  bad usage\n"
    "  3  not authorized (polkit said no, or a password was needed and could not\n"
    "     be asked for)\n"
    "  4  the service could not be reached (no system bus, service not installed\n"
    "     or failed to start, no answer in time)\n";

namespace {

Verb parse_verb(const std::string& word) {
    // "umount", the drop-in command's (and umount(8)'s) word, is taken too.
    if (auto verb = vocabulary::verb_from_word(word)) {
        return *verb;
    }
    throw UsageError("unknown command '" + printable_bounded(word) + "'");
}

} // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    std::vector<std::string> positional;
    bool options_done = false;
    // Options may come anywhere, as with systemd's tools; instance names
    // never start with '-', so nothing is lost by taking '-' words as options.
    for (const auto& arg : args) {
        if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
            positional.push_back(arg);
        } else if (arg == "--") {
            options_done = true;
        } else if (arg == "-h" || arg == "--help") {
            cl.help = true;
        } else if (arg == "--version") {
            cl.version = true;
        } else if (arg == "--no-ask-password") {
            cl.ask_password = false;
        } else if (arg == "--json" || arg == "--json=short") {
            cl.json = JsonMode::Short;
        } else if (arg == "--json=pretty") {
            cl.json = JsonMode::Pretty;
        } else if (arg == "--json=off") {
            cl.json = JsonMode::Off;
        } else if (arg.rfind("--json=", 0) == 0) {
            throw UsageError("unknown --json mode '" + printable_bounded(arg.substr(7)) +
                             "' (short, pretty or off)");
        } else if (arg == "--dry-run") {
            cl.dry_run = true;
        } else if (arg == "--no-legend") {
            cl.legend = false;
        } else {
            throw UsageError("unknown option '" + printable_bounded(arg) + "'");
        }
    }
    if (cl.help || cl.version) {
        return cl;
    }
    // No command: list, as systemctl and machinectl do.
    cl.verb = positional.empty() ? Verb::List : parse_verb(positional[0]);
    const auto& verb = vocabulary::verb_info(cl.verb);
    if (!verb.takes_instance) {
        if (positional.size() > 1) {
            throw UsageError(std::string(verb.word) + " takes no instance name");
        }
    } else {
        if (positional.size() != 2) {
            throw UsageError(std::string(verb.word) + " needs exactly one instance name");
        }
        cl.instance = positional[1];
        // The same check the service makes (core), made here too so that a
        // bad name is refused at once: exit 2, no bus, no daemon started.
        // The core's message shows the name escaped and cut to 80 bytes.
        try {
            validate_instance_name(cl.instance);
        } catch (const overlay::Error& e) {
            throw UsageError(e.what());
        }
    }
    if (cl.dry_run && cl.verb != Verb::Migrate) {
        throw UsageError("--dry-run applies to migrate only");
    }
    if (cl.json != JsonMode::Off && verb.reply != vocabulary::Reply::Status &&
        verb.reply != vocabulary::Reply::List) {
        throw UsageError("--json applies to status and list only");
    }
    return cl;
}

} // namespace overlay::ctl
