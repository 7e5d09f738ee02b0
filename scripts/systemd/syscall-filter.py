#!/usr/bin/python3
"""Runs a command under the system-call allow-list of a systemd unit, without systemd.

    scripts/systemd/syscall-filter.py UNIT [--errno SYSCALL]... [--without SYSCALL]... -- COMMAND...

Reads the unit's SystemCallFilter= lines (allow-list entries: system calls and @groups), expands
the groups as this machine's systemd does (`systemd-analyze syscall-filter`), installs that
allow-list with libseccomp (Debian's python3-seccomp) and executes COMMAND under it. It is
stricter than the unit: a system call outside the list kills the process (SIGSYS) instead of
failing with the unit's SystemCallErrorNumber=, so a call the list lacks cannot go unnoticed;
--errno SYSCALL makes one known call fail with EPERM instead, as the unit would (for calls the
command tries and copes without). --without SYSCALL takes a call out of the list (to check the
filter is really in force). Like systemd, it always allows execve, exit, exit_group, getrlimit,
rt_sigreturn and the calls that read clocks and sleep, and only the native architecture.

Needs no privilege (the filter sets no_new_privs). The tests run it on the broker
(tests/e2e/systemd.rs); docs/systemd.md says what was measured with it and with strace.
"""

import errno
import os
import re
import subprocess
import sys

try:
    import seccomp
except ImportError:
    sys.exit("syscall-filter.py: needs python3-seccomp (apt-get install python3-seccomp)")

# What systemd allows whatever the list says (systemd.exec(5), SystemCallFilter=).
IMPLICIT = """execve exit exit_group getrlimit rt_sigreturn sigreturn
clock_getres clock_gettime clock_nanosleep gettimeofday nanosleep time""".split()


def groups():
    """Every @group of this systemd, as {name: [entries]} (entries may be other groups)."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], check=True, capture_output=True, text=True
    ).stdout
    table, current = {}, None
    for line in out.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if not line.startswith(" "):
            current = table.setdefault(entry, [])
        elif current is not None:
            current.append(entry)
    return table


def expand(entries, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for entry in entries:
        if entry.startswith("@"):
            if entry in seen:
                continue
            seen.add(entry)
            if entry not in table:
                sys.exit(f"syscall-filter.py: systemd knows no group {entry}")
            calls |= expand(table[entry], table, seen)
        else:
            calls.add(entry)
    return calls


def unit_filter(path):
    """The unit's allow-list entries (in order of its SystemCallFilter= lines)."""
    entries = []
    with open(path, encoding="utf-8") as unit:
        for line in unit:
            match = re.match(r"\s*SystemCallFilter=(.*)$", line)
            if not match:
                continue
            value = match.group(1).strip()
            if value.startswith("~"):
                sys.exit(f"syscall-filter.py: {path}: deny-list entries are not supported: {value}")
            entries += value.split()
    if not entries:
        sys.exit(f"syscall-filter.py: {path} has no SystemCallFilter=")
    return entries


def main(argv):
    if "--" not in argv or len(argv) < 3:
        sys.exit(__doc__)
    split = argv.index("--")
    options, command = argv[1:split], argv[split + 1 :]
    unit, rest = options[0], options[1:]
    errno_calls, without = [], []
    while rest:
        flag, name, rest = rest[0], rest[1], rest[2:]
        {"--errno": errno_calls, "--without": without}[flag].append(name)

    allowed = (expand(unit_filter(unit), groups()) | set(IMPLICIT)) - set(without) - set(errno_calls)
    rules = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
    for name in sorted(allowed):
        try:
            rules.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            # A call of another architecture (arm_fadvise64_64) or one this libseccomp does not
            # know: systemd skips those the same way.
            pass
    for name in errno_calls:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    rules.load()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv)
