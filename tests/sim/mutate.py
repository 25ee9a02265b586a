#!/usr/bin/env python3
"""
Mutation tests of raft/: prove that raft-sim catches every broken rule.

For each mutant of the catalogue (mutants.py), copy raft/ to a scratch
directory, apply the one mutation, rebuild raft-sim against the copy and run
it with a fixed seed budget, stopping at the first failing seed. A mutant is
killed when raft-sim fails (a checker report, a library assertion or a crash);
it survives when every seed passes. With --unit the raft unit tests are built
against the mutant too, to report which of them catch it. raft-sim alone
must kill every mutant except those the catalogue marks by='unit' (the
documented gaps), which the unit tests must kill instead: a by='unit'
mutant counts as a survivor unless --unit is given and a unit test fails.

    mutate.py [--seeds 3000] [--first 1] [--only a,b] [--sample K]
              [--sample-seed S] [--unit] [--cc "ccache gcc"] [--list]
              [--no-baseline] [--jobs J] [--markdown] [--sim-only]

Exit status: 0 every mutant killed; 1 some survived; 2 the catalogue no
longer matches the source, a build failed, or the unmutated baseline failed.
Nothing is ever written to the source tree.
"""

import argparse
import concurrent.futures
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mutants import MUTANTS  # noqa: E402

SRC = os.path.normpath(os.path.join(HERE, '..', '..'))
SIM_SOURCES = ['tests/sim/world.c', 'tests/sim/client.c', 'tests/sim/check.c',
               'tests/sim/scenario.c']
UNIT_TESTS = ['election', 'replication', 'prevote', 'check_quorum',
              'read_index', 'transfer', 'snapshot', 'membership', 'log',
              'conf']
CFLAGS = ['-std=gnu11', '-O2', '-g0', '-D_GNU_SOURCE', '-w']


class CatalogueError(Exception):
    pass


def mutate_copy(src, work, mutant):
    """Copy raft/ into work/raft and apply mutant (None: unmutated)."""
    dst = os.path.join(work, 'raft')
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(os.path.join(src, 'raft'), dst)
    if mutant is None:
        return
    path = os.path.join(work, mutant.file)
    with open(path) as f:
        text = f.read()
    n = text.count(mutant.old)
    if n != 1:
        raise CatalogueError('%s: the text to mutate occurs %d times in %s'
                             % (mutant.name, n, mutant.file))
    with open(path, 'w') as f:
        f.write(text.replace(mutant.old, mutant.new))


def compile_all(cc, jobs, units, work, src, extra=()):
    """Compile (source path, object path) pairs; raise on failure."""
    def one(pair):
        source, obj = pair
        cmd = cc + CFLAGS + ['-I', work, '-I', src] + list(extra) + \
            ['-c', source, '-o', obj]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError('compile %s failed:\n%s' % (source, p.stderr))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, units))


def build(cc, jobs, work, src, unit, cmocka):
    """Build raft-sim (and with unit, the raft unit tests) in work."""
    objdir = os.path.join(work, 'obj')
    os.makedirs(objdir, exist_ok=True)
    raft_units = []
    for name in sorted(os.listdir(os.path.join(work, 'raft'))):
        if name.endswith('.c'):
            raft_units.append((os.path.join(work, 'raft', name),
                               os.path.join(objdir, 'raft_' + name + '.o')))
    common = [(os.path.join(src, 'core/errors.c'),
               os.path.join(objdir, 'errors.o'))]
    for s in SIM_SOURCES:
        common.append((os.path.join(src, s),
                       os.path.join(objdir, os.path.basename(s) + '.o')))
    main = [(os.path.join(src, 'tests/sim/main.c'),
             os.path.join(objdir, 'main.o'))]
    tests = []
    if unit:
        for t in UNIT_TESTS:
            tests.append((os.path.join(src, 'tests/unit/raft/test_%s.c' % t),
                          os.path.join(objdir, 'test_%s.o' % t)))
    compile_all(cc, jobs, raft_units + common + main, work, src)
    if tests:
        compile_all(cc, jobs, tests, work, src, cmocka[0])
    lib = [o for _, o in raft_units + common]
    link = cc + ['-o', os.path.join(work, 'raft-sim'), main[0][1]] + lib
    p = subprocess.run(link, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError('link failed:\n' + p.stderr)
    for (_, obj), t in zip(tests, UNIT_TESTS):
        link = cc + ['-o', os.path.join(work, 'test_' + t), obj] + lib + \
            cmocka[1]
        p = subprocess.run(link, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError('link failed:\n' + p.stderr)


FAIL_RE = re.compile(r'^FAIL seed (\d+) at time \d+: (.*)$', re.M)
AFTER_RE = re.compile(r'first failure after (\d+) seeds')


def classify(message):
    """The check that fired, from raft-sim's failure message."""
    m = re.match(r'([a-z][a-z -]*?):', message)
    if m and not message.startswith('node '):
        return m.group(1)
    m = re.match(r'node \d+: (.*)', message)
    rest = m.group(1) if m else message
    for key in ('hard state', 'acknowledged', 'persisted', 'commit index',
                'log ends', 'restore failed', 'applied', 'snapshot',
                'stepped down', 'term', 'proposal', 'WAL'):
        if key in rest:
            return key
    return rest[:40]


def run_sim(work, seeds, first, timeout):
    """Run raft-sim; returns (killed, how, seeds it took, seconds)."""
    cmd = [os.path.join(work, 'raft-sim'), '--seeds', str(seeds),
           '--first', str(first), '--stop']
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return True, 'hang (timeout %ds)' % timeout, None, timeout
    took = time.monotonic() - start
    fail = FAIL_RE.search(p.stdout)
    after = AFTER_RE.search(p.stdout)
    if fail:
        n = int(after.group(1)) if after else None
        return True, classify(fail.group(2)), n, took
    if p.returncode == 0:
        return False, 'survived', None, took
    # killed by the library's own assertion or a crash
    ab = re.search(r'aborted in seed \d+ after (\d+) seeds', p.stderr)
    seeds_taken = int(ab.group(1)) if ab else None
    reason = 'crash (status %d)' % p.returncode
    a = re.search(r"Assertion `(.*)' failed", p.stderr)
    if a:
        reason = 'library assert `%s`' % a.group(1)
    return True, reason, seeds_taken, took


def run_units(work):
    caught = []
    for t in UNIT_TESTS:
        try:
            p = subprocess.run([os.path.join(work, 'test_' + t)],
                               capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                caught.append(t)
        except subprocess.TimeoutExpired:
            caught.append(t + '(hang)')
    return caught


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--seeds', type=int, default=3000)
    ap.add_argument('--first', type=int, default=1)
    ap.add_argument('--only', default='')
    ap.add_argument('--sample', type=int, default=0)
    ap.add_argument('--sample-seed', default='')
    ap.add_argument('--unit', action='store_true')
    ap.add_argument('--cc', default=os.environ.get('CC', 'cc'))
    ap.add_argument('--src', default=SRC)
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--no-baseline', action='store_true')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=600)
    ap.add_argument('--markdown', action='store_true')
    ap.add_argument('--sim-only', action='store_true',
                    help='only the mutants raft-sim must kill (no cmocka)')
    args = ap.parse_args()

    mutants = MUTANTS
    names = [m.name for m in MUTANTS]
    if len(set(names)) != len(names):
        print('mutate: duplicate mutant names', file=sys.stderr)
        return 2
    if args.list:
        for m in mutants:
            print('%-32s %s' % (m.name, m.rule))
        return 0
    if args.only:
        wanted = args.only.split(',')
        unknown = [w for w in wanted if w not in names]
        if unknown:
            print('mutate: unknown mutants: %s' % ', '.join(unknown),
                  file=sys.stderr)
            return 2
        mutants = [m for m in MUTANTS if m.name in wanted]
    if args.sim_only:
        mutants = [m for m in mutants if m.by == 'sim']
    if args.sample:
        # a different sample every day by default, reproducible by seed
        seed = args.sample_seed or time.strftime('%Y%m%d', time.gmtime())
        mutants = random.Random(seed).sample(mutants,
                                             min(args.sample, len(mutants)))
        print('mutate: sample of %d (--sample-seed %s): %s'
              % (len(mutants), seed, ' '.join(m.name for m in mutants)))

    cc = shlex.split(args.cc)
    cmocka = ([], [])
    if args.unit:
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'cmocka'],
                               capture_output=True, text=True)
        libs = shlex.split(flags.stdout) if flags.returncode == 0 else \
            ['-lcmocka']
        cmocka = ([f for f in libs if not f.startswith('-l')],
                  [f for f in libs if f.startswith('-l')])

    src = os.path.abspath(args.src)
    work = tempfile.mkdtemp(prefix='raft-mutants-')
    rows = []
    status = 0
    try:
        if not args.no_baseline:
            mutate_copy(src, work, None)
            build(cc, args.jobs, work, src, args.unit, cmocka)
            killed, how, _, took = run_sim(work, args.seeds, args.first,
                                           args.timeout)
            units = run_units(work) if args.unit else []
            if killed or units:
                print('mutate: the unmutated baseline fails (%s%s)'
                      % (how, ' ' + ','.join(units) if units else ''))
                return 2
            print('mutate: baseline clean: %d seeds in %.1fs'
                  % (args.seeds, took))
        for m in mutants:
            mutate_copy(src, work, m)
            build(cc, args.jobs, work, src, args.unit, cmocka)
            killed, how, n, took = run_sim(work, args.seeds, args.first,
                                           args.timeout)
            units = run_units(work) if args.unit else []
            if m.by != 'sim' and not killed and units:
                killed, how = True, 'unit tests only (documented gap)'
            elif m.by == 'sim' and not killed:
                how = 'survived'
            rows.append((m, killed, how, n, took, units))
            print('%-32s %-8s %-28s %6s seeds %6.1fs%s'
                  % (m.name, 'killed' if killed else 'SURVIVED', how,
                     n if n is not None else '-', took,
                     ('  unit: ' + (','.join(units) or 'none'))
                     if args.unit else ''), flush=True)
    except CatalogueError as e:
        print('mutate: %s' % e, file=sys.stderr)
        return 2
    except RuntimeError as e:
        print('mutate: %s' % e, file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)

    survivors = [r[0].name for r in rows if not r[1]]
    by_sim = sum(1 for r in rows
                 if r[1] and not r[2].startswith('unit tests only'))
    print('mutate: %d of %d mutants killed (%d by raft-sim alone, %d seeds '
          'budget)%s'
          % (len(rows) - len(survivors), len(rows), by_sim, args.seeds,
             ('; survivors: ' + ', '.join(survivors)) if survivors else ''))
    if args.markdown:
        print()
        print('| mutant | rule broken | caught by raft-sim | seeds |%s'
              % (' unit tests that fail |' if args.unit else ''))
        print('|---|---|---|---|%s' % ('---|' if args.unit else ''))
        for m, k, how, n, _, units in rows:
            print('| `%s` | %s | %s | %s |%s'
                  % (m.name, m.rule, how if k else '**survived**',
                     n if n is not None else '-',
                     (' %s |' % (', '.join(units) or '—'))
                     if args.unit else ''))
    if survivors:
        status = 1
    return status


if __name__ == '__main__':
    sys.exit(main())
