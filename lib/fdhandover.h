/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfdhandover — take file descriptors out of a live process, prove each
 * one is the file it claims to be, and describe the handover in a small
 * versioned manifest.
 *
 * Conventions (every function):
 *  - returns 0 (or a positive count) on success and -errno on failure;
 *  - never prints, never exits, never aborts on bad input;
 *  - on failure, fdh_last_error() describes what went wrong: which entry,
 *    which syscall, and what to do.  The detail is per thread and is
 *    overwritten by the next failing call;
 *  - out-parameters are named ret_* and come last; they are left untouched
 *    on failure;
 *  - every fd the library returns has O_CLOEXEC set and belongs to the
 *    caller.
 */
#ifndef FDHANDOVER_H
#define FDHANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FDH_VERSION_MAJOR 0
#define FDH_VERSION_MINOR 3
#define FDH_VERSION_PATCH 0

const char *fdh_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                             */

struct fdh_error {
	int code;		/* negative errno, 0 if none */
	int entry;		/* index of the failing entry, -1 if none */
	char msg[512];		/* "pidfd_getfd(pid 4121, fd 37 'net0.tap'): ..." */
};

/* Detail of the last failure in this thread (never NULL). */
const struct fdh_error *fdh_last_error(void);

/* ------------------------------------------------------------------ */
/* Kinds of file                                                      */

enum fdh_kind {
	FDH_KIND_OTHER = 0,
	FDH_KIND_MEMFD = 1,
	FDH_KIND_TAP = 2,
	FDH_KIND_EVENTFD = 3,
	FDH_KIND_VHOST_NET = 4,
	FDH_KIND_VHOST_USER = 5,	/* a unix socket spoken vhost-user over */
	FDH_KIND_UNIX_SOCKET = 6,
	FDH_KIND_PIDFD = 7,
	FDH_KIND_EPOLL = 8,
	FDH_KIND_PIPE = 9,
	FDH_KIND_FILE = 10,		/* regular file, not a memfd */
	FDH_KIND_SOCKET = 11,		/* any socket but AF_UNIX */
	FDH_KIND__MAX
};

/* "memfd", "tap", ...; NULL for an out-of-range kind. */
const char *fdh_kind_name(enum fdh_kind kind);
/* Inverse of fdh_kind_name(); -EINVAL for an unknown name. */
int fdh_kind_from_name(const char *name);

/*
 * Identity of an open file, as far as it can be told from outside.
 *
 * dev/ino alone is not an identity: every eventfd shares one anonymous
 * inode, every TAP queue is /dev/net/tun.  kind_id carries the kind's own
 * identity: the fdinfo "eventfd-id" of an eventfd, the inode of a socket
 * (sockfs inodes are unique), 0 where dev/ino suffice (memfd, file).
 * name carries the TAP interface name (fdinfo "iff:"); it is compared when
 * set.  The kernel does not expose a TAP fd's queue index, so queues of one
 * device are told apart by kcmp (two entries must never be the same file).
 */
#define FDH_NAME_MAX 64

struct fdh_identity {
	uint32_t kind;			/* enum fdh_kind */
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;			/* st_mode; only S_IFMT is compared */
	uint64_t kind_id;
	char name[FDH_NAME_MAX];	/* TAP ifname; "" if not compared */
};

/* The fields of an identity, as fdh_identity_diff() reports them. */
enum fdh_identity_field {
	FDH_IDENTITY_KIND = 1u << 0,
	FDH_IDENTITY_DEV = 1u << 1,
	FDH_IDENTITY_INO = 1u << 2,
	FDH_IDENTITY_TYPE = 1u << 3,	/* S_IFMT of mode */
	FDH_IDENTITY_KIND_ID = 1u << 4,
	FDH_IDENTITY_NAME = 1u << 5,
};

/*
 * fdh_pull()'s rule: the fields in which got tells another file than
 * expect, or 0 when it is the same file as far as an identity can tell.
 * dev, ino and the file type always count; the kind unless expect's is
 * FDH_KIND_OTHER (which says nothing) or got's is the one expect's is
 * carried by (a vhost-user socket is a unix socket); kind_id for eventfds
 * and sockets (unix, vhost-user, any other); name for a TAP, when expect
 * has one.  Never fails; it sets no error.
 */
unsigned int fdh_identity_diff(const struct fdh_identity *expect,
			       const struct fdh_identity *got);

/* ------------------------------------------------------------------ */
/* Source process                                                     */

struct fdh_source;

struct fdh_source_info {
	pid_t pid;
	uid_t uid;
	uint64_t start_time;		/* /proc/PID/stat field 22, clock ticks */
	char comm[16];
	int pidfd;			/* owned by the source handle */
	int sockfd;			/* cooperation socket or -1; owned by the handle */
};

/*
 * Open a source by pid.  expect_start_time, if non-zero, must match the
 * process's start time: a recycled PID (same number, another process) is
 * refused with -ESRCH.  0 checks nothing: it is for a pid that comes with
 * nothing to pin it (typed by a user, say); a caller that works from a
 * manifest uses fdh_source_open_manifest(), which always checks.
 * Errors: -ESRCH (no such process, or recycled), -EPERM, -ENOSYS (no
 * pidfd_open), -ENOMEM.
 */
int fdh_source_open_pid(pid_t pid, uint64_t expect_start_time,
			struct fdh_source **ret_source);
struct fdh_manifest;
/*
 * Open the process a manifest was made from, and prove the live process
 * is that one: its pid, start time, boot id and uid must all be the
 * manifest's (the start time is never skipped: a manifest always has one).
 * Errors: -EINVAL (m NULL, or m->source invalid, e.g. start_time 0),
 * -ESRCH (the manifest's process is gone: no such pid, the pid now names
 * another process, or the manifest was made before the last boot),
 * -ESTALE (it is that process, but its uid changed since the manifest),
 * and those of fdh_source_open_pid().
 */
int fdh_source_open_manifest(const struct fdh_manifest *m,
			     struct fdh_source **ret_source);
/* Open a source by a pidfd (duplicated; the caller keeps its own). */
int fdh_source_open_pidfd(int pidfd, struct fdh_source **ret_source);
/*
 * Open the peer of a connected AF_UNIX socket as a source: SO_PEERPIDFD
 * (Linux 6.5), else SO_PEERCRED + pidfd_open + a check that the process
 * started before the call and has the peer's uid.  The socket is
 * duplicated and kept as the cooperation channel for the SCM_RIGHTS
 * fallback.  Note: the peer is the process that called connect() or
 * socketpair(), not whoever holds the other end now.
 */
int fdh_source_open_socket(int sockfd, struct fdh_source **ret_source);
/* Attach a cooperation socket (duplicated) to a source opened otherwise. */
int fdh_source_set_socket(struct fdh_source *source, int sockfd);
int fdh_source_get_info(const struct fdh_source *source,
			struct fdh_source_info *ret_info);
void fdh_source_free(struct fdh_source *source);

/* ------------------------------------------------------------------ */
/* Pull                                                               */

struct fdh_pull_entry {
	int remote_fd;			/* fd number in the source */
	struct fdh_identity expect;
	const char *label;		/* for messages, may be NULL */
};

enum fdh_transport {
	FDH_TRANSPORT_NONE = 0,
	FDH_TRANSPORT_PIDFD = 1,	/* pidfd_getfd */
	FDH_TRANSPORT_SCM_RIGHTS = 2,	/* fallback over the cooperation socket */
};

const char *fdh_transport_name(enum fdh_transport transport);

struct fdh_pull_report {
	enum fdh_transport transport;
	int fallback_reason;		/* -errno that made us fall back, or 0 */
	/* Entries proven to be the very open file the source holds at
	 * remote_fd: by pidfd_getfd itself, or by kcmp(KCMP_FILE). */
	size_t n_kcmp_verified;
	uint64_t elapsed_ns;
};

/*
 * Pull every entry, all or nothing.  Each pulled fd is checked with fstat
 * against expect (dev, ino, file type) and with the kind's own identity,
 * and proven to be the open file the source holds at remote_fd:
 * pidfd_getfd returns exactly that file, so over it kcmp(KCMP_FILE)
 * against the source's fd is added only where the identity cannot tell
 * one open file of a kind from another (TAP queues, pipe ends, pidfds,
 * epoll, vhost-net, regular files, other); over the SCM_RIGHTS fallback,
 * where the source chose what to send, every fd is compared with kcmp.
 * No two entries may be the same open file: entries whose identities
 * could be one file are compared with kcmp.  On success ret_fds[i] is
 * the local fd for entries[i].  On any failure every fd pulled so far is
 * closed, ret_fds is untouched, and fdh_last_error()->entry names the
 * failing entry.
 *
 * When pidfd_getfd is refused (-EPERM, -ENOSYS) and the source has a
 * cooperation socket, the same set is requested over SCM_RIGHTS (the
 * source runs fdh_serve_one()) and verified the same way; every reply
 * must carry the next batch in order, with as many fds as it announces,
 * at least one, or none with an error (else -EPROTO), within 5 s (else
 * -ETIMEDOUT).  kcmp is skipped only when the kernel refuses kcmp itself;
 * fstat and the kind's identity are still checked and n_kcmp_verified
 * says so.
 *
 * The pulled fd shares the open file description with the source's copy:
 * file status flags (O_NONBLOCK, O_APPEND) and the file offset are shared;
 * changing them on one side changes them on the other.
 *
 * Errors: -EBADF (closed number), -ESRCH (source gone), -EPERM (no ptrace
 * permission and no cooperation socket), -ESTALE (identity mismatch: the
 * number now names another file), -EINVAL (bad arguments, duplicate
 * entries), -EMFILE, -ENOMEM, -EPROTO (bad fallback reply).
 */
int fdh_pull(struct fdh_source *source, const struct fdh_pull_entry *entries,
	     size_t n_entries, int *ret_fds, struct fdh_pull_report *ret_report);

/* Largest number of entries one fdh_pull() accepts. */
#define FDH_PULL_MAX 4096

/*
 * Source side of the SCM_RIGHTS fallback: read one request from sockfd and
 * answer it with the requested fds.  Only fds listed in allowed (n_allowed
 * entries) are sent; allowed == NULL allows any open fd.  Waits as long as
 * it takes for a request to begin; once one has begun, the rest of it must
 * arrive, and each reply must be accepted by the socket, within 5 s
 * (-ETIMEDOUT).  Returns the number of fds sent, 0 on an orderly end of
 * the connection, or -errno (-EPROTO for a malformed request).
 */
int fdh_serve_one(int sockfd, const int *allowed, size_t n_allowed);

/*
 * Under Yama ptrace_scope=1 only descendants may pidfd_getfd from us: let
 * successor (a pid, or 0 for any process of the same uid) do it too
 * (PR_SET_PTRACER).  Returns 0 also where Yama is absent.
 */
int fdh_allow_successor(pid_t successor);

/* ------------------------------------------------------------------ */
/* Fence (source side, after the successor has committed)             */

enum fdh_fence_flags {
	/* Kill the whole process with SIGSYS (SECCOMP_RET_KILL_PROCESS,
	 * Linux 4.14) on a fenced call, instead of failing it with EBADF. */
	FDH_FENCE_KILL = 1u << 0,
	/* The fenced numbers stay taken until exit: close() of them and
	 * dup2()/dup3() onto them fail with EBADF, and close_range() of a
	 * range reaching from at most the highest fenced number to at least
	 * the lowest (unless CLOSE_RANGE_CLOEXEC) fails with ENOSYS and
	 * closes nothing — never a kill — so no file opened later lands on
	 * a fenced number.  On ENOSYS, QEMU's qemu_close_all_open_fd(),
	 * systemd's close_all_fds() and CPython's os.closerange() close fd
	 * by fd in one pass, which closes every other fd (a helper forked
	 * later is fine).  glibc's closefrom() never returns: its fallback
	 * re-reads /proc/self/fd until a pass closes nothing.  Do not call
	 * it after such a fence.  For a process whose own cleanup closes
	 * what it handed over and that may open more (a QEMU that hands a
	 * VM over, then answers a monitor). */
	FDH_FENCE_KEEP_OPEN = 1u << 1,
};

/* Largest number of fds one fdh_fence_fds() accepts (-E2BIG past it). */
#define FDH_FENCE_MAX 256

/*
 * Fence the fds this process has handed over: from now on, in every thread
 * (including threads created later), these calls on any of fds[] fail with
 * EBADF, or kill the process with FDH_FENCE_KILL:
 *   read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
 *   recvfrom recvmsg recvmmsg (and recvmmsg_time64 on 32-bit ABIs that
 *   have it) sendto sendmsg sendmmsg accept accept4 connect bind listen
 *   shutdown setsockopt ioctl lseek ftruncate fallocate flock getdents(64)
 *   fchmod fchown fsetxattr fremovexattr
 *   epoll_wait epoll_pwait epoll_pwait2 epoll_ctl (the epoll fd)
 *   splice tee sendfile copy_file_range (either fd) vmsplice
 *   mmap (not MAP_ANONYMOUS)  dup dup2 dup3 (the source fd)
 *   pidfd_getfd (the fd number, whichever process the pidfd names: the
 *   filter cannot tell, so pulling that number from another process fails
 *   too)
 *   fcntl, every command but F_GETFD, F_SETFD and F_GETFL (a list of
 *   allowed commands, so F_SETOWN, F_SETSIG, F_SETPIPE_SZ, F_SETLEASE,
 *   F_ADD_SEALS, F_SETLK*, F_OFD_SETLK*, F_NOTIFY, F_DUPFD* and any
 *   command added later fail, and so do the other queries)
 * That is every call that moves data through the file or changes what the
 * successor shares with us (offset, status flags, size, locks, seals, owner,
 * socket state, an epoll set), and every call that would make an unfenced
 * alias of a fenced number.
 * Still allowed: close, close_range, fstat, fcntl F_GETFD/F_SETFD/F_GETFL,
 * getsockopt, epoll_ctl on another epoll fd (so a clean shutdown can
 * still unregister and close), and dup2/dup3 *onto* a fenced number —
 * unless FDH_FENCE_KEEP_OPEN.
 *
 * The filter matches fd numbers, not files: closing a fenced fd works, but
 * the number stays fenced, so whatever is opened on it next is fenced too.
 * Do not let the number be reused — keep the fd open until exit, dup2()
 * /dev/null onto it, or fence with FDH_FENCE_KEEP_OPEN, which makes the
 * close fail and the fd stay open.  Every fd must be open when fenced
 * (-EBADF).
 *
 * A guard against mistakes, not a sandbox: memory already mapped from a
 * fenced file (munmap it first), io_uring, a copy passed on by SCM_RIGHTS
 * before the fence, an open of /proc/self/fd/N, and syscalls of a foreign
 * ABI (i386 or x32 on x86_64) are not seen by it.
 *
 * Irreversible: a seccomp filter, loaded with SECCOMP_FILTER_FLAG_TSYNC
 * for all threads or none, inherited by children forked later and kept
 * across execve — a helper program run after the fence finds the same
 * numbers fenced in its own fd table.  Fence on the way out.  no_new_privs is set (on every thread) only if the kernel
 * demands it, i.e. the caller lacks CAP_SYS_ADMIN in its user namespace;
 * after that, execve of setuid programs gains no privileges.  Successive
 * fences stack; every syscall of the process then runs every filter, and
 * a fenced syscall's cost grows with the number of fds fenced.  Building
 * the filter grows faster than linearly with n_fds (libseccomp): a few
 * milliseconds for 16 fds, about 0.2 s for 64, seconds for 256.
 *
 * Returns 0 or -errno: -EINVAL (fds NULL, n_fds 0, a negative or repeated
 * fd, unknown flags; from the kernel: strict seccomp mode, or a filter it
 * refused), -E2BIG (n_fds > FDH_FENCE_MAX: one filter holds no more; fence
 * nothing rather than part of the set), -EBADF (an fd not open),
 * -ESRCH (a thread has a seccomp filter of its own, so TSYNC cannot cover
 * it; nothing was installed), -ENOSYS (no seccomp filters or TSYNC in this
 * kernel), -EOPNOTSUPP (FDH_FENCE_KILL before Linux 4.14), -ENOMEM
 * (including the kernel's 32768-instruction limit across stacked filters).
 * Nothing is installed on any failure; the one trace a failure can leave is
 * no_new_privs on the calling thread, when it had to be set and TSYNC then
 * failed (-ESRCH).
 */
int fdh_fence_fds(const int *fds, size_t n_fds, unsigned int flags);

/* ------------------------------------------------------------------ */
/* Inspect                                                            */

#define FDH_PATH_MAX 256
#define FDH_EPOLL_MAX 32

struct fdh_fd_info {
	int fd;
	enum fdh_kind kind;
	char target[FDH_PATH_MAX];	/* readlink of /proc/PID/fd/N */
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;
	uint32_t flags;			/* fdinfo "flags:" (open flags) */
	uint64_t pos;
	uint64_t mnt_id;
	union {
		struct {
			char name[FDH_NAME_MAX];
			uint64_t size;
			uint32_t seals;		/* F_GET_SEALS, if readable */
			bool seals_known;
		} memfd;
		struct {
			uint64_t count;
			uint64_t id;
			bool semaphore;
		} eventfd;
		struct {
			char ifname[16];
			uint32_t iff_flags;	/* from a pulled copy, if allowed */
			int32_t vnet_hdr_sz;	/* -1 if unknown */
			bool details_known;
		} tap;
		struct {
			uint64_t ino;
			uint64_t peer_ino;	/* 0 if none / unknown */
			uint32_t type;		/* SOCK_STREAM, ... (0 unknown) */
			uint32_t state;
			char path[108];		/* bound name, "" if none */
		} unix_socket;
		struct {
			pid_t pid;
		} pidfd;
		struct {
			uint32_t n_tfds;
			int32_t tfds[FDH_EPOLL_MAX];
		} epoll;
	} u;
};

enum fdh_inspect_flags {
	/* Also pull a temporary copy (pidfd_getfd) for what fdinfo lacks:
	 * TAP flags and vnet header size, memfd seals.  Needs ptrace
	 * permission; without it those fields stay unknown. */
	FDH_INSPECT_PULL = 1u << 0,
};

/*
 * Describe fd of process pid.  Errors: -ESRCH (process gone), -EBADF (fd
 * not open), -EACCES/-EPERM (fdinfo unreadable).
 */
int fdh_inspect_fd(pid_t pid, int fd, unsigned flags,
		   struct fdh_fd_info *ret_info);
/*
 * Describe every fd of pid, sorted by number.  fds that close while being
 * read are left out.  *ret_infos is malloc'd (free() it).
 */
int fdh_inspect_process(pid_t pid, unsigned flags,
			struct fdh_fd_info **ret_infos, size_t *ret_n);
/*
 * True when pid no longer runs: no /proc/PID, or a zombie (or dead) task,
 * whose fds the kernel has already closed — its /proc/PID/fd lists nothing
 * rather than failing.  Tells "the process exited" from "the fd closed" or
 * "the process holds no fds".
 */
bool fdh_process_gone(pid_t pid);
/* The identity that fdh_pull() would check for this fd. */
void fdh_identity_from_info(const struct fdh_fd_info *info,
			    struct fdh_identity *ret_identity);
/* Identity of a local fd (fstat + fdinfo of our own process). */
int fdh_identity_of_fd(int fd, struct fdh_identity *ret_identity);

/* ------------------------------------------------------------------ */
/* Manifest                                                           */

#define FDH_MANIFEST_MAGIC "FDHM"
#define FDH_MANIFEST_VERSION 1
#define FDH_MANIFEST_MAX_ENTRIES 1024
#define FDH_MANIFEST_MAX_DEVICES 64
#define FDH_MANIFEST_MAX_VRINGS 64
#define FDH_MANIFEST_MAX_BYTES (1u << 20)
#define FDH_OWNER_MAX 64

struct fdh_manifest_source {
	int32_t pid;
	uint64_t start_time;		/* never 0: it pins the pid */
	char boot_id[37];		/* /proc/sys/kernel/random/boot_id */
	uint32_t uid;
	char comm[16];
};

struct fdh_manifest_entry {
	char owner[FDH_OWNER_MAX];	/* "ram0", "net0", "vu-blk0" */
	uint32_t index;			/* index within the owner (queue, region) */
	uint32_t kind;			/* enum fdh_kind */
	int32_t remote_fd;
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;
	uint32_t open_flags;		/* O_* as fdinfo shows them */
	uint64_t kind_id;		/* see struct fdh_identity */
	union {
		struct {
			char ifname[16];
			uint32_t queue;
			uint32_t iff_flags;
			int32_t vnet_hdr_sz;
			uint32_t offloads;	/* TUN_F_* */
		} tap;
		struct {
			char name[FDH_NAME_MAX];
			uint64_t size;
			uint32_t seals;
		} memfd;
		struct {
			bool semaphore;
		} eventfd;
		struct {
			uint64_t inflight_size;
			uint64_t inflight_offset;
			uint16_t inflight_queue_size;
			uint16_t inflight_num_queues;
			uint64_t protocol_features;
		} vhost_user;
	} u;
};

struct fdh_vring {
	uint32_t index;
	uint32_t size;
	uint64_t desc;
	uint64_t avail;
	uint64_t used;
	uint16_t last_avail_idx;
	uint16_t used_idx;
};

/* A virtio device whose rings continue across the handover. */
struct fdh_manifest_device {
	char owner[FDH_OWNER_MAX];
	uint64_t acked_features;
	uint32_t n_vrings;
	struct fdh_vring vrings[FDH_MANIFEST_MAX_VRINGS];
};

struct fdh_manifest {
	uint32_t version;
	struct fdh_manifest_source source;
	size_t n_entries;
	struct fdh_manifest_entry *entries;
	size_t n_devices;
	struct fdh_manifest_device *devices;
};

struct fdh_manifest *fdh_manifest_new(void);
void fdh_manifest_free(struct fdh_manifest *m);
/* Fill m->source from a live process (pid, start time, boot id, uid, comm). */
int fdh_manifest_set_source(struct fdh_manifest *m, pid_t pid);
/* Append a copy.  -E2BIG past the limits; -EINVAL if the entry is invalid. */
int fdh_manifest_add_entry(struct fdh_manifest *m,
			   const struct fdh_manifest_entry *entry);
int fdh_manifest_add_device(struct fdh_manifest *m,
			    const struct fdh_manifest_device *device);
/* Fill an entry's identity fields from fdh_inspect_fd() output. */
void fdh_manifest_entry_from_info(const struct fdh_fd_info *info,
				  const char *owner, uint32_t index,
				  struct fdh_manifest_entry *ret_entry);
/* The identity fdh_pull() should expect for this entry. */
void fdh_manifest_entry_identity(const struct fdh_manifest_entry *entry,
				 struct fdh_identity *ret_identity);

/*
 * Check every field against Documentation/manifest.md.  On failure,
 * fdh_last_error() names the field ("entries[3].tap.ifname: ...").
 */
int fdh_manifest_validate(const struct fdh_manifest *m);

/* Wire form: "FDHM", u32 LE version, GVariant (normal form).  *ret_buf is malloc'd. */
int fdh_manifest_encode(const struct fdh_manifest *m, void **ret_buf,
			size_t *ret_len);
/* Decode and validate completely; -EBADMSG for anything not specified. */
int fdh_manifest_decode(const void *buf, size_t len,
			struct fdh_manifest **ret_manifest);
/*
 * Read a manifest file that only its owner could have written, then
 * decode it: path is opened with O_NOFOLLOW (a symlink as the last
 * component is refused), and must be a regular file owned by the
 * effective uid or by root, writable by neither group nor others, and at
 * most FDH_MANIFEST_MAX_BYTES.  The directories on the way are not
 * checked: keep the file in one only its owner can write to.  Errors:
 * -ELOOP (a symlink), -EINVAL (path NULL, or not a regular file), -EPERM
 * (owner or mode), -EFBIG (too large), -EBADMSG (not a valid manifest),
 * -errno from open() and read().
 */
int fdh_manifest_read_file(const char *path,
			   struct fdh_manifest **ret_manifest);

/* Human text and JSON renderings; *ret is malloc'd, NUL-terminated. */
int fdh_manifest_to_text(const struct fdh_manifest *m, char **ret);
int fdh_manifest_to_json(const struct fdh_manifest *m, bool pretty,
			 char **ret);

#ifdef __cplusplus
}
#endif

#endif /* FDHANDOVER_H */
