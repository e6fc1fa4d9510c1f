import "math"
import "hash"
import "elf"
import "pe"

private rule is_elf { condition: uint32(0) == 0x464c457f }
rule entropy_high { condition: math.entropy(0, filesize) > 7.5 }
rule known_md5 { condition: hash.md5(0, filesize) == "d41d8cd98f00b204e9800998ecf8427e" }
rule pe_or_elf { condition: is_elf or pe.is_pe or elf.type == elf.ET_EXEC }
