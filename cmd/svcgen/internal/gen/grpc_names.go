package gen

import "strings"

// pbFieldNames is the Go name protoc-gen-go gives the next field of msg,
// whose GoCamelCase name is name: protogen's makeNameUnique, which appends
// "_" while the name, or its getter Get+name, is taken by a field before
// it, a getter or a method of every message. Fields are named in .proto
// order, which is msg.Fields' order.
func (msg *protoMessage) pbFieldNames(name string) string {
	if msg.pbNames == nil {
		msg.pbNames = map[string]bool{}
		for _, m := range []string{"Reset", "String", "ProtoMessage", "Marshal", "Unmarshal", "ExtensionRangeArray", "ExtensionMap", "Descriptor"} {
			msg.pbNames[m] = true
		}
	}
	for msg.pbNames[name] || msg.pbNames["Get"+name] {
		name += "_"
	}
	msg.pbNames[name] = true
	msg.pbNames["Get"+name] = true
	return name
}

// protoFieldName is a JSON name in protobuf's snake case: userID → user_id.
func protoFieldName(js string) string {
	var b strings.Builder
	rs := []rune(js)
	for i, r := range rs {
		switch {
		case r == '-' || r == '.' || r == ' ':
			b.WriteByte('_')
		case r >= 'A' && r <= 'Z':
			if i > 0 && (rs[i-1] >= 'a' && rs[i-1] <= 'z' || rs[i-1] >= '0' && rs[i-1] <= '9' ||
				i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z' && rs[i-1] != '_' && rs[i-1] >= 'A' && rs[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pbFieldName is protoc-gen-go's GoCamelCase of a field name, the Go name
// it gives the field unless that clashes (pbFieldNames).
func pbFieldName(s string) string {
	lower := func(c byte) bool { return 'a' <= c && c <= 'z' }
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' && i == 0:
			b = append(b, 'X')
		case c == '_' && i+1 < len(s) && lower(s[i+1]):
		case '0' <= c && c <= '9':
			b = append(b, c)
		default:
			if lower(c) {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			for ; i+1 < len(s) && lower(s[i+1]); i++ {
				b = append(b, s[i+1])
			}
		}
	}
	return string(b)
}

func isASCIIIdent(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
