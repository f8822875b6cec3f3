#!/usr/bin/env python3
"""mount_verify.py - byte-exact checks of files served by apbundle-mount.

Used by tests/mount_*.sh.  Every command exits 0 when the check holds and
1 with a message naming the first mismatch otherwise.

  random SRC DST N SEED          N preads at random offsets and sizes match
  whole SRC DST                  sequential read of DST equals SRC
  mmap SRC DST shared|private    an mmap of DST equals SRC
  parallel P N SEED SRC=DST...   P processes doing N random reads each
  errno NAME OP PATH             OP (write, create, mkdir, unlink, rmdir,
                                 rename, link, symlink, truncate, setxattr,
                                 removexattr, open_rw, chmod, mmap_shared, stat, open) fails
                                 with errno NAME
  pread_errno NAME PATH OFF LEN  os.pread fails with errno NAME
  pread_ok SRC DST OFF LEN       os.pread succeeds and matches SRC
  json FILE KEY                  prints .stats.json's top-level KEY
  model FILE NAME KEY            prints KEY of model NAME in .stats.json
  keys FILE                      prints the sorted top-level keys
"""
import errno
import json
import mmap
import os
import random
import sys


def fail(msg):
    print("mismatch: " + msg, file=sys.stderr)
    sys.exit(1)


def read_src(path):
    with open(path, "rb") as f:
        return f.read()


def check_random(src, dst, n, seed):
    data = read_src(src)
    rng = random.Random(seed)
    fd = os.open(dst, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size != len(data):
            fail("%s: size %d, expected %d" % (dst, os.fstat(fd).st_size, len(data)))
        for _ in range(n):
            off = rng.randrange(0, len(data) + 2) if data else rng.randrange(0, 4)
            size = rng.choice([1, 7, 512, 4096, 65536, 200000, 1 << 20, rng.randrange(1, 300000)])
            got = os.pread(fd, size, off)
            if got != data[off:off + size]:
                fail("%s: pread(%d, %d) differs" % (dst, size, off))
    finally:
        os.close(fd)


def check_whole(src, dst):
    if read_src(src) != read_src(dst):
        fail("%s differs from %s" % (dst, src))


def check_mmap(src, dst, kind):
    data = read_src(src)
    with open(dst, "rb") as f:
        if not data:
            return
        access = mmap.ACCESS_READ if kind == "shared" else mmap.ACCESS_COPY
        m = mmap.mmap(f.fileno(), 0, access=access)
        try:
            if m[:] != data:
                fail("%s: mmap (%s) differs" % (dst, kind))
        finally:
            m.close()


def check_parallel(procs, n, seed, pairs):
    pids = []
    for p in range(procs):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for i, (src, dst) in enumerate(pairs):
                    check_random(src, dst, n, seed * 1000 + p * 100 + i)
            except SystemExit as e:
                code = e.code or 0
            except BaseException as e:  # report and fail, never hang
                print("reader %d: %r" % (p, e), file=sys.stderr)
                code = 1
            os._exit(code)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            bad += 1
    if bad:
        fail("%d of %d parallel readers failed" % (bad, procs))


def try_op(op, path):
    if op == "write":
        fd = os.open(path, os.O_WRONLY)
        os.close(fd)
    elif op == "open_rw":
        fd = os.open(path, os.O_RDWR)
        os.close(fd)
    elif op == "create":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "unlink":
        os.unlink(path)
    elif op == "rmdir":
        os.rmdir(path)
    elif op == "rename":
        os.rename(path, path + ".renamed")
    elif op == "link":
        os.link(path, path + ".link")
    elif op == "symlink":
        os.symlink("target", path)
    elif op == "truncate":
        os.truncate(path, 0)
    elif op == "setxattr":
        os.setxattr(path, "user.test", b"x")
    elif op == "removexattr":
        os.removexattr(path, "user.apbundle.offset")
    elif op == "chmod":
        os.chmod(path, 0o644)
    elif op == "mmap_shared":
        with open(path, "rb") as f:
            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ).close()
    elif op == "stat":
        os.stat(path)
    elif op == "open":
        fd = os.open(path, os.O_RDONLY)
        os.close(fd)
    else:
        fail("unknown op " + op)


def check_errno(name, op, path):
    want = getattr(errno, name)
    try:
        try_op(op, path)
    except OSError as e:
        if e.errno != want:
            fail("%s %s: %s, expected %s" % (op, path, errno.errorcode.get(e.errno), name))
        return
    fail("%s %s succeeded, expected %s" % (op, path, name))


def check_pread_errno(name, path, off, size):
    want = getattr(errno, name)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, size, off)
    except OSError as e:
        if e.errno != want:
            fail("pread(%s, %d, %d): %s, expected %s"
                 % (path, size, off, errno.errorcode.get(e.errno), name))
        return
    finally:
        os.close(fd)
    fail("pread(%s, %d, %d) succeeded, expected %s" % (path, size, off, name))


def check_pread_ok(src, dst, off, size):
    data = read_src(src)
    fd = os.open(dst, os.O_RDONLY)
    try:
        got = os.pread(fd, size, off)
    finally:
        os.close(fd)
    if got != data[off:off + size]:
        fail("%s: pread(%d, %d) differs" % (dst, size, off))


def load_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def main(argv):
    cmd = argv[1]
    if cmd == "random":
        check_random(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "whole":
        check_whole(argv[2], argv[3])
    elif cmd == "mmap":
        check_mmap(argv[2], argv[3], argv[4])
    elif cmd == "parallel":
        pairs = [tuple(a.split("=", 1)) for a in argv[5:]]
        check_parallel(int(argv[2]), int(argv[3]), int(argv[4]), pairs)
    elif cmd == "errno":
        check_errno(argv[2], argv[3], argv[4])
    elif cmd == "pread_errno":
        check_pread_errno(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "pread_ok":
        check_pread_ok(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "json":
        print(json.dumps(load_json(argv[2])[argv[3]]))
    elif cmd == "model":
        models = [m for m in load_json(argv[2])["models"] if m["name"] == argv[3]]
        if len(models) != 1:
            fail("model %s appears %d times in %s" % (argv[3], len(models), argv[2]))
        print(json.dumps(models[0][argv[4]]))
    elif cmd == "keys":
        print(" ".join(sorted(load_json(argv[2]).keys())))
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
