/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A small kselftest-style harness: TEST / FIXTURE / TEST_F, KTAP output,
 * SKIP with a reason.  Every test runs in its own forked child, in its own
 * process group, which is killed (with anything it spawned) when the test
 * ends or times out; helpers it forks should also set PR_SET_PDEATHSIG.
 *
 *	TEST(pull_refuses_closed_fd)
 *	{
 *		ASSERT_EQ(fdh_pull(...), -EBADF, "a closed number must fail");
 *	}
 *	TEST_HARNESS_MAIN
 *
 * ASSERT_* end the test on failure; EXPECT_* record the failure and go on.
 * The optional trailing printf arguments say why the check matters.
 */
#ifndef FDH_TEST_HARNESS_H
#define FDH_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct th_test;
struct th_meta;

typedef void (*th_fn)(struct th_meta *meta);

struct th_test {
	const char *name;
	th_fn fn;
	unsigned int timeout_s;
	struct th_test *next;
};

/* Shared with the parent through an anonymous shared mapping. */
struct th_meta {
	int failed;
	int skipped;
	char reason[512];
};

void th_register(struct th_test *t);
void th_fail(struct th_meta *meta, bool fatal, const char *file, int line,
	     const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void th_skip(struct th_meta *meta, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) __attribute__((noreturn));
void th_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *th_cmp_text(const char *expr, long long a, long long b);
int th_main(int argc, char **argv);

#define TH_DEFAULT_TIMEOUT 60

#define TH_REGISTER(id, tname, tfn, tmo)				\
	static struct th_test th_t_##id = {				\
		.name = tname, .fn = tfn, .timeout_s = tmo,		\
	};								\
	__attribute__((constructor)) static void th_reg_##id(void)	\
	{								\
		th_register(&th_t_##id);				\
	}

#define TEST_TIMEOUT(name, seconds)					\
	static void th_body_##name(struct th_meta *_meta);		\
	TH_REGISTER(name, #name, th_body_##name, seconds)		\
	static void th_body_##name(struct th_meta *_meta)

#define TEST(name) TEST_TIMEOUT(name, TH_DEFAULT_TIMEOUT)

/* FIXTURE(f) { fields };  FIXTURE_SETUP(f) { self->... }  */
#define FIXTURE(f) struct th_fixture_##f
#define FIXTURE_SETUP(f)						\
	static void th_setup_##f(struct th_meta *_meta,		\
				 struct th_fixture_##f *self)
#define FIXTURE_TEARDOWN(f)						\
	static void th_teardown_##f(struct th_meta *_meta,		\
				    struct th_fixture_##f *self)

#define TEST_F_TIMEOUT(f, name, seconds)				\
	static void th_body_##f##_##name(struct th_meta *_meta,	\
					 struct th_fixture_##f *self);	\
	static void th_run_##f##_##name(struct th_meta *_meta)		\
	{								\
		struct th_fixture_##f self;				\
		memset(&self, 0, sizeof(self));				\
		th_setup_##f(_meta, &self);				\
		if (!_meta->failed)					\
			th_body_##f##_##name(_meta, &self);		\
		th_teardown_##f(_meta, &self);				\
	}								\
	TH_REGISTER(f##_##name, #f "." #name, th_run_##f##_##name,	\
		    seconds)						\
	static void th_body_##f##_##name(struct th_meta *_meta,	\
					 struct th_fixture_##f *self)

#define TEST_F(f, name) TEST_F_TIMEOUT(f, name, TH_DEFAULT_TIMEOUT)

#define SKIP(...) th_skip(_meta, __VA_ARGS__)
#define TH_LOG(...) th_diag(__VA_ARGS__)

/* Fatal asserts return from the test body; a fixture's teardown still runs. */
#define TH_CHECK(fatal, cond, expr, ...)				\
	do {								\
		if (!(cond)) {						\
			th_fail(_meta, fatal, __FILE__, __LINE__, expr,	\
				" " __VA_ARGS__);			\
			if (fatal)					\
				return;					\
		}							\
	} while (0)

/* The comparison's text with both values, formatted only on failure. */
#define TH_CMP(fatal, a, op, b, ...)					\
	do {								\
		long long _a = (long long)(a), _b = (long long)(b);	\
		TH_CHECK(fatal, _a op _b,				\
			 th_cmp_text(#a " " #op " " #b, _a, _b), __VA_ARGS__); \
	} while (0)

#define ASSERT_EQ(a, b, ...) TH_CMP(true, a, ==, b, __VA_ARGS__)
#define ASSERT_NE(a, b, ...) TH_CMP(true, a, !=, b, __VA_ARGS__)
#define ASSERT_LT(a, b, ...) TH_CMP(true, a, <, b, __VA_ARGS__)
#define ASSERT_LE(a, b, ...) TH_CMP(true, a, <=, b, __VA_ARGS__)
#define ASSERT_GT(a, b, ...) TH_CMP(true, a, >, b, __VA_ARGS__)
#define ASSERT_GE(a, b, ...) TH_CMP(true, a, >=, b, __VA_ARGS__)
#define ASSERT_TRUE(c, ...) TH_CHECK(true, (c), #c, __VA_ARGS__)
#define ASSERT_FALSE(c, ...) TH_CHECK(true, !(c), "!(" #c ")", __VA_ARGS__)
#define ASSERT_STREQ(a, b, ...)						\
	TH_CHECK(true, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define EXPECT_EQ(a, b, ...) TH_CMP(false, a, ==, b, __VA_ARGS__)
#define EXPECT_NE(a, b, ...) TH_CMP(false, a, !=, b, __VA_ARGS__)
#define EXPECT_LT(a, b, ...) TH_CMP(false, a, <, b, __VA_ARGS__)
#define EXPECT_LE(a, b, ...) TH_CMP(false, a, <=, b, __VA_ARGS__)
#define EXPECT_GT(a, b, ...) TH_CMP(false, a, >, b, __VA_ARGS__)
#define EXPECT_GE(a, b, ...) TH_CMP(false, a, >=, b, __VA_ARGS__)
#define EXPECT_TRUE(c, ...) TH_CHECK(false, (c), #c, __VA_ARGS__)
#define EXPECT_FALSE(c, ...) TH_CHECK(false, !(c), "!(" #c ")", __VA_ARGS__)
#define EXPECT_STREQ(a, b, ...)						\
	TH_CHECK(false, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)

#define TEST_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		return th_main(argc, argv);				\
	}

#endif /* FDH_TEST_HARNESS_H */
