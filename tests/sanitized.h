/*
 * sanitized.h - SANITIZED is 1 in AddressSanitizer and ThreadSanitizer
 * builds (gcc's __SANITIZE_*__ macros, clang's __has_feature), else 0.
 * Tests then use smaller sizes (each step is slower, and TSan's shadow
 * memory per task is large) and report memory figures without enforcing
 * them.  Shared by the Check suites (through testutil.h) and the programs
 * that do not use Check (the soak, the fuzz target's standalone driver).
 */
#ifndef CSP_TESTS_SANITIZED_H
#define CSP_TESTS_SANITIZED_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#endif
