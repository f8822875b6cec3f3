/*
 * reload.c - generations of the mount and live reload of a replaced
 * bundle (SIGHUP, "reload" in .control, -o watch).
 *
 * A reload opens the bundle's path again with apb_paged_open_shared: the
 * new handle shares the old one's page cache, so one max_memory bounds
 * both and the models that did not change keep their pages.  A bundle
 * that does not open or validate changes nothing (the log says why).
 *
 * Invariants: a generation is freed only by its last reference and never
 * while current (apbm_gen in mount.h says who holds one); inode numbers
 * carry the generation ((id - 1) << 32 | node + 1) for the bundle's
 * directories and models, so an old descriptor's inode never names a new
 * model, while the root and the generated files keep their numbers in
 * every generation; after a swap the kernel is told to forget every
 * name in the root of either tree (notify_inval_entry) and the root's
 * listing (notify_inval_inode), so a new lookup or open reaches the new
 * generation and never its stale pages.  Reloads run one at a time
 * (reload_lock).  The watch thread only reads the pipe and the inotify
 * descriptor, and calls apbm_reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "mount.h"

#define NODE_BITS 32

/* The generated files, in inode order (inodes 2 to 5; .control only with -o control). */
static const char *const vnames[] = { ".stats", ".stats.json", ".metrics", ".control" };
static const int64_t vkinds[] = { APBM_VSTATS, APBM_VJSON, APBM_VMETRICS, APBM_VCONTROL };

static void gen_free(apbm_gen *g)
{
	if (!g)
		return;
	apbm_tree_free(&g->tree);
	apb_paged_close(g->pb);
	free(g);
}

uint64_t apbm_gen_ino(const apbm_gen *g, const apbm_node *n)
{
	uint64_t node = (uint64_t)(n - g->tree.nodes);

	if (node < g->tree.first_model_node)
		return node + 1;	/* root and generated files: every generation's */
	return ((g->id - 1) << NODE_BITS) | (node + 1);
}

apbm_gen *apbm_gen_cur(apbm_fs *fs)
{
	apbm_gen *g;

	pthread_mutex_lock(&fs->gen_lock);
	g = fs->cur;
	g->refs++;
	pthread_mutex_unlock(&fs->gen_lock);
	return g;
}

apbm_gen *apbm_gen_of_ino(apbm_fs *fs, uint64_t ino, const apbm_node **n)
{
	uint64_t id = (ino >> NODE_BITS) + 1, node = ino & ((1ull << NODE_BITS) - 1);
	apbm_gen *g;

	pthread_mutex_lock(&fs->gen_lock);
	g = fs->cur;
	if (node == 0 || node > g->tree.first_model_node) {
		for (g = fs->gens; g && g->id != id; g = g->next)
			;
	} else if (id != 1) {
		g = NULL;	/* root and generated files carry no generation */
	}
	*n = g ? apbm_tree_node(&g->tree, node) : NULL;
	if (*n)
		g->refs++;
	pthread_mutex_unlock(&fs->gen_lock);
	return *n ? g : NULL;
}

uint64_t apbm_gens_live(apbm_fs *fs)
{
	uint64_t n = 0;

	pthread_mutex_lock(&fs->gen_lock);
	for (const apbm_gen *g = fs->gens; g; g = g->next)
		n++;
	pthread_mutex_unlock(&fs->gen_lock);
	return n;
}

void apbm_gen_get(apbm_fs *fs, apbm_gen *g)
{
	pthread_mutex_lock(&fs->gen_lock);
	g->refs++;
	pthread_mutex_unlock(&fs->gen_lock);
}

void apbm_gen_put(apbm_fs *fs, apbm_gen *g)
{
	apbm_gen **pp;
	bool last;

	if (!g)
		return;
	pthread_mutex_lock(&fs->gen_lock);
	last = --g->refs == 0;
	if (last) {
		for (pp = &fs->gens; *pp != g; pp = &(*pp)->next)
			;
		*pp = g->next;
	}
	pthread_mutex_unlock(&fs->gen_lock);
	if (!last)
		return;
	apbm_log(LOG_INFO, "generation %llu closed: its last open file was closed",
	         (unsigned long long)g->id);
	gen_free(g);
}

/* Logs the first models the tree cannot show, with the reason. */
static void report_hidden(void *ctx, const char *name, const char *why)
{
	apbm_tree *t = ctx;

	if (t->n_hidden <= 20)
		apbm_log(LOG_WARNING, "model \"%s\" is not shown: %s", name, why);
}

int apbm_gen_new(apbm_fs *fs, apb_paged *pb, uint64_t id, const struct stat *st, apbm_gen **out)
{
	apbm_vfile_spec v[4];
	apbm_gen *g = calloc(1, sizeof(*g));
	int rc;

	*out = NULL;
	if (!g) {
		apb_paged_close(pb);
		return -ENOMEM;
	}
	g->pb = pb;
	g->id = id;
	g->refs = 1;
	for (size_t i = 0; i < 4; i++)
		v[i] = (apbm_vfile_spec){ vnames[i], vkinds[i], vkinds[i] != APBM_VCONTROL || fs->control };
	rc = apbm_tree_build(&g->tree, pb, v, 4, report_hidden, &g->tree);
	if (g->tree.n_hidden > 20)
		apbm_log(LOG_WARNING, "%u models in all are not shown (the first 20 are named above)",
		         g->tree.n_hidden);
	if (rc != 0) {
		gen_free(g);
		return rc;
	}
	if (st) {
		g->atime = st->st_atim;
		g->mtime = st->st_mtim;
		g->ctime = st->st_ctim;
		g->bundle_size = (uint64_t)st->st_size;
	} else {
		clock_gettime(CLOCK_REALTIME, &g->mtime);
		g->atime = g->ctime = g->mtime;
	}
	*out = g;
	return 0;
}

/* Tells the kernel to forget the root's entries of t (their subtrees go with them). */
static void forget_names(apbm_fs *fs, const apbm_tree *t)
{
	const apbm_node *root = &t->nodes[APBM_ROOT_NODE];

	for (uint32_t k = 0; k < root->n_children; k++) {
		const apbm_node *c = &t->nodes[t->children[root->first_child + k]];
		if (c->model == APBM_DIR || c->model >= 0)
			fuse_lowlevel_notify_inval_entry(fs->se, FUSE_ROOT_ID, c->name, c->name_len);
	}
}

/* Makes g current; the old current is forgotten by the kernel and loses the current's reference. */
static void swap_in(apbm_fs *fs, apbm_gen *g)
{
	apbm_gen *old;

	pthread_mutex_lock(&fs->gen_lock);
	old = fs->cur;
	g->next = fs->gens;
	fs->gens = g;
	fs->cur = g;
	old->refs++;	/* kept for the notifications below */
	pthread_mutex_unlock(&fs->gen_lock);
	if (fs->se) {
		forget_names(fs, &old->tree);
		forget_names(fs, &g->tree);
		fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
	}
	apbm_gen_put(fs, old);	/* the notifications' */
	apbm_gen_put(fs, old);	/* the current's */
}

/* Opens the new version as a generation after cur.  0 or the library's error (logged). */
static int open_next(apbm_fs *fs, apbm_gen *cur, const char *why, apbm_gen **out)
{
	struct stat st, *stp = NULL;
	apb_paged *pb;
	int rc;

	if (!fs->remote && stat(fs->open_path, &st) == 0)
		stp = &st;
	rc = apb_paged_open_shared(cur->pb, fs->open_path, &fs->net.opt, &pb);
	if (rc != 0) {
		apbm_log(LOG_ERR, "reload (%s) of '%s' failed, still serving generation %llu: %s",
		         why, fs->bundle_path, (unsigned long long)cur->id, apb_last_error());
		return rc;
	}
	rc = apbm_gen_new(fs, pb, cur->id + 1, stp, out);
	if (rc != 0)
		apbm_log(LOG_ERR, "reload (%s) of '%s' failed, still serving generation %llu: %s",
		         why, fs->bundle_path, (unsigned long long)cur->id, strerror(-rc));
	return rc;
}

int apbm_reload(apbm_fs *fs, const char *why)
{
	apbm_gen *cur, *g = NULL;
	int rc;

	pthread_mutex_lock(&fs->reload_lock);
	cur = apbm_gen_cur(fs);
	rc = open_next(fs, cur, why, &g);
	if (rc == 0) {
		if (apb_paged_start_worker(g->pb) != 0)
			apbm_log(LOG_WARNING, "prefetch worker not started: %s", apb_last_error());
		swap_in(fs, g);
		apbm_log(LOG_INFO, "reload (%s): serving generation %llu of '%s' (%zu models)", why,
		         (unsigned long long)g->id, fs->bundle_path, apb_paged_model_count(g->pb));
		__atomic_add_fetch(&fs->reloads, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&fs->reload_failures, 1, __ATOMIC_RELAXED);
	}
	apbm_gen_put(fs, cur);
	pthread_mutex_unlock(&fs->reload_lock);
	return rc;
}

/* ---- the watch thread: SIGHUP and -o watch ---- */

static int hup_fd = -1;

static void on_hup(int sig)
{
	int saved = errno;
	char c = 'h';

	(void)sig;
	if (hup_fd >= 0 && write(hup_fd, &c, 1) < 0) {
		/* the pipe is full: a reload is pending already */
	}
	errno = saved;
}

/* True when the inotify events in buf[0..len) replaced the bundle's name. */
static bool replaced(const char *buf, ssize_t len, const char *base)
{
	for (ssize_t at = 0; at + (ssize_t)sizeof(struct inotify_event) <= len;) {
		const struct inotify_event *ev = (const void *)(buf + at);
		if ((ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) && ev->len && !strcmp(ev->name, base))
			return true;
		at += (ssize_t)sizeof(*ev) + ev->len;
	}
	return false;
}

/* Reads what poll reported; returns the trigger's name or NULL (nothing to do, or stop). */
static const char *next_trigger(apbm_fs *fs, struct pollfd *p, const char *base, bool *stop)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	if (p[0].revents) {
		n = read(fs->wake_fd[0], buf, sizeof(buf));
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == 'q')
				*stop = true;
		return n > 0 && memchr(buf, 'h', (size_t)n) ? "SIGHUP" : NULL;
	}
	if (p[1].revents && (n = read(fs->watch_fd, buf, sizeof(buf))) > 0 && replaced(buf, n, base))
		return "watch";
	return NULL;
}

static void *watch_main(void *arg)
{
	apbm_fs *fs = arg;
	char *copy = strdup(fs->open_path ? fs->open_path : "");
	const char *base = copy ? basename(copy) : "";
	bool stop = false;

	while (!stop) {
		struct pollfd p[2] = { { fs->wake_fd[0], POLLIN, 0 }, { fs->watch_fd, POLLIN, 0 } };
		const char *why;
		if (poll(p, fs->watch_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			apbm_log(LOG_ERR, "reload thread: poll: %s", strerror(errno));
			break;
		}
		if ((why = next_trigger(fs, p, base, &stop)) && !stop)
			apbm_reload(fs, why);
	}
	free(copy);
	return NULL;
}

/* Watches the directory of the bundle's path for a rename onto its name. */
static int start_watch(apbm_fs *fs)
{
	char *copy = strdup(fs->open_path);
	int wd;

	if (!copy)
		return -ENOMEM;
	fs->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	wd = fs->watch_fd < 0 ? -1 : inotify_add_watch(fs->watch_fd, dirname(copy),
	                                               IN_MOVED_TO | IN_CLOSE_WRITE);
	if (wd < 0) {
		int err = errno;
		apbm_log(LOG_ERR, "-o watch: cannot watch the directory of '%s': %s", fs->open_path,
		         strerror(err));
		free(copy);
		return -err;
	}
	free(copy);
	return 0;
}

int apbm_reload_start(apbm_fs *fs)
{
	struct sigaction sa;
	int rc;

	fs->watch_fd = -1;
	if (pipe2(fs->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		fs->wake_fd[0] = fs->wake_fd[1] = -1;
		apbm_log(LOG_ERR, "reload thread: pipe: %s", strerror(errno));
		return -errno;
	}
	if (fs->watch && (rc = start_watch(fs)) != 0)
		return rc;
	if ((rc = pthread_create(&fs->watch_thread, NULL, watch_main, fs)) != 0) {
		apbm_log(LOG_ERR, "reload thread: %s", strerror(rc));
		return -rc;
	}
	fs->watch_started = true;
	hup_fd = fs->wake_fd[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

void apbm_reload_stop(apbm_fs *fs)
{
	char q = 'q';

	if (fs->watch_started) {
		signal(SIGHUP, SIG_IGN);
		hup_fd = -1;
	}
	if (fs->watch_started) {
		while (write(fs->wake_fd[1], &q, 1) < 0 && errno == EAGAIN)
			usleep(1000);
		pthread_join(fs->watch_thread, NULL);
		fs->watch_started = false;
	}
	if (fs->watch_fd >= 0)
		close(fs->watch_fd);
	for (int i = 0; i < 2; i++)
		if (fs->wake_fd[i] >= 0)
			close(fs->wake_fd[i]);
	fs->watch_fd = fs->wake_fd[0] = fs->wake_fd[1] = -1;
}

void apbm_gens_free(apbm_fs *fs)
{
	while (fs->gens) {	/* the kernel may unmount without every RELEASE */
		apbm_gen *g = fs->gens;
		fs->gens = g->next;
		gen_free(g);
	}
	fs->cur = NULL;
}
