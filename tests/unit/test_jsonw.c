/* test_jsonw: JSON writer output, byte for byte, as a table; every output parses. */
#include <json-c/json.h>
#include <string.h>

#include "core/jsonw.h"
#include "t.h"

int main(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} strs[] = {
		{"plain", 5, "\"plain\""},
		{"q\"b\\s", 5, "\"q\\\"b\\\\s\""},
		{"a\nb\tc\r", 6, "\"a\\nb\\tc\\r\""},
		{"\x01\x1f", 2, "\"\\u0001\\u001f\""},
		{"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
		{"bad\xff", 4, "\"bad\xef\xbf\xbd\""},
		{"\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},       /* overlong '/' */
		{"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
		{"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},
		{"nul\0in", 6, "\"nul\\u0000in\""},
	};
	struct jsonw w;
	jsonw_init(&w);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		jsonw_reset(&w);
		jsonw_strn(&w, NULL, strs[i].in, strs[i].len);
		T_CHECK(strcmp(w.buf, strs[i].want) == 0, "string %zu: got %s", i, w.buf);
		json_object *o = json_tokener_parse(w.buf);
		T_CHECK(o != NULL, "string %zu parses", i);
		json_object_put(o);
	}
	jsonw_reset(&w);
	jsonw_obj_open(&w, NULL);
	jsonw_int(&w, "i", -5);
	jsonw_uint(&w, "u", 18446744073709551615ull);
	jsonw_bool(&w, "b", true);
	jsonw_arr_open(&w, "a");
	jsonw_str(&w, NULL, "x");
	jsonw_int(&w, NULL, 1);
	jsonw_arr_close(&w);
	jsonw_obj_open(&w, "o");
	jsonw_obj_close(&w);
	jsonw_hex(&w, "h", "\x00\xff", 2);
	jsonw_time(&w, "t", 0, 123456789);
	jsonw_double(&w, "d", 0.5);
	jsonw_obj_close(&w);
	const char *want = "{\"i\":-5,\"u\":18446744073709551615,\"b\":true,\"a\":[\"x\",1],\"o\":{},"
			   "\"h\":\"00ff\",\"t\":\"1970-01-01T00:00:00.123456Z\",\"d\":0.5}";
	T_CHECK(strcmp(w.buf, want) == 0, "object: %s", w.buf);
	T_CHECK(!jsonw_utf8_valid("a\xff", 2) && jsonw_utf8_valid("caf\xc3\xa9", 5), "utf8_valid");
	jsonw_free(&w);
	return T_DONE("jsonw");
}
