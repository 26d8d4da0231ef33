/* test_net.c - the key a source address counts under for the per-source
 * cap: IPv6 by network, ::1 with 127.0.0.1, IPv4-mapped as IPv4. */
#include <check.h>
#include <string.h>

#include "net.h"
#include "unit.h"

/* The key of ip under prefix length bits (in one of a few buffers, so
 * that two keys can be compared). */
static const char *key(const char *ip, unsigned bits)
{
    static char k[4][NET_SOURCE_KEY_MAX];
    static unsigned next;
    char *out = k[next++ % 4];
    net_source_key(ip, bits, out);
    return out;
}

START_TEST(ipv6_by_network)
{
    ck_assert_str_eq(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64), "2001:db8:1:2::/64");
    ck_assert_str_eq(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff::9", 64));
    ck_assert_str_ne(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
    ck_assert_str_eq(key("2001:db8:1:2::1", 48), key("2001:db8:1:3::1", 48));
    ck_assert_str_eq(key("2001:db8::1", 128), "2001:db8::1/128");
    ck_assert_str_eq(key("2001:db8:1:2:3:4:5:6", 60), "2001:db8:1::/60");
    ck_assert_str_eq(key("fe80::1:2", 1), "8000::/1");
}
END_TEST

START_TEST(loopback_and_ipv4)
{
    ck_assert_str_eq(key("::1", 64), "127.0.0.1");
    ck_assert_str_eq(key("127.0.0.1", 64), "127.0.0.1");
    ck_assert_str_eq(key("::ffff:10.1.2.3", 64), "10.1.2.3");
    ck_assert_str_eq(key("10.1.2.3", 64), "10.1.2.3");
    ck_assert_str_ne(key("10.1.2.3", 64), key("10.1.2.4", 64));
    ck_assert_str_eq(key("?", 64), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("source_key");
    tcase_add_test(tc, ipv6_by_network);
    tcase_add_test(tc, loopback_and_ipv4);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
