rule hex_and_regex
{
    meta:
        author = "ward"
        score = 10
    strings:
        $h = { 7F 45 4C 46 [2-4] ?? 6C }
        $r = /hel+o\s+W[A-Z]+/ nocase
        $w = "abcdefgh" wide ascii
    condition:
        ($h or $r) and #w >= 0 and filesize < 1MB
}
