global rule g { condition: filesize > 0 }
rule loops
{
    strings:
        $a = "0123"
        $b = /[0-9]{4}/
    condition:
        for any i in (1..#a) : ( @a[i] < 100 ) and
        for all of ($b*) : ( # > 0 ) and 2 of them
}
