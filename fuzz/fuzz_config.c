/* fuzz_config: the config parser on arbitrary text; it must never crash, leak or accept a
 * relative path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct ward_config c;
	char err[640];
	config_init(&c);
	if (config_load_string(&c, text, "fuzz", err, sizeof(err)) == 0)
		for (int i = 0; i < c.nwatch; i++)
			if (c.watch[i][0] != '/')
				abort();
	config_free(&c);
	free(text);
	return 0;
}
