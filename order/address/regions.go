package address

// region is one first-level division of a country: its name in the local
// script (as the country's own addresses write it), its Latin name, and
// other spellings people type for it.
type region struct {
	local, latin string
	aliases      []string
}

// jpPrefectures are Japan's 47 prefectures (都道府県), in JIS X 0401 order.
var jpPrefectures = []region{
	{"北海道", "Hokkaido", nil}, {"青森県", "Aomori", nil}, {"岩手県", "Iwate", nil}, {"宮城県", "Miyagi", nil},
	{"秋田県", "Akita", nil}, {"山形県", "Yamagata", nil}, {"福島県", "Fukushima", nil}, {"茨城県", "Ibaraki", nil},
	{"栃木県", "Tochigi", nil}, {"群馬県", "Gunma", nil}, {"埼玉県", "Saitama", nil}, {"千葉県", "Chiba", nil},
	{"東京都", "Tokyo", []string{"Tokyo-to"}}, {"神奈川県", "Kanagawa", nil}, {"新潟県", "Niigata", nil}, {"富山県", "Toyama", nil},
	{"石川県", "Ishikawa", nil}, {"福井県", "Fukui", nil}, {"山梨県", "Yamanashi", nil}, {"長野県", "Nagano", nil},
	{"岐阜県", "Gifu", nil}, {"静岡県", "Shizuoka", nil}, {"愛知県", "Aichi", nil}, {"三重県", "Mie", nil},
	{"滋賀県", "Shiga", nil}, {"京都府", "Kyoto", []string{"Kyoto-fu"}}, {"大阪府", "Osaka", []string{"Osaka-fu"}}, {"兵庫県", "Hyogo", nil},
	{"奈良県", "Nara", nil}, {"和歌山県", "Wakayama", nil}, {"鳥取県", "Tottori", nil}, {"島根県", "Shimane", nil},
	{"岡山県", "Okayama", nil}, {"広島県", "Hiroshima", nil}, {"山口県", "Yamaguchi", nil}, {"徳島県", "Tokushima", nil},
	{"香川県", "Kagawa", nil}, {"愛媛県", "Ehime", nil}, {"高知県", "Kochi", nil}, {"福岡県", "Fukuoka", nil},
	{"佐賀県", "Saga", nil}, {"長崎県", "Nagasaki", nil}, {"熊本県", "Kumamoto", nil}, {"大分県", "Oita", nil},
	{"宮崎県", "Miyazaki", nil}, {"鹿児島県", "Kagoshima", nil}, {"沖縄県", "Okinawa", nil},
}

// krProvinces are Korea's 17 first-level divisions (시·도).
var krProvinces = []region{
	{"서울특별시", "Seoul", []string{"서울", "서울시", "Seoul-si"}},
	{"부산광역시", "Busan", []string{"부산", "부산시"}},
	{"대구광역시", "Daegu", []string{"대구", "대구시"}},
	{"인천광역시", "Incheon", []string{"인천", "인천시"}},
	{"광주광역시", "Gwangju", []string{"광주", "광주시"}},
	{"대전광역시", "Daejeon", []string{"대전", "대전시"}},
	{"울산광역시", "Ulsan", []string{"울산", "울산시"}},
	{"세종특별자치시", "Sejong", []string{"세종", "세종시"}},
	{"경기도", "Gyeonggi-do", []string{"경기", "Gyeonggi"}},
	{"강원특별자치도", "Gangwon-do", []string{"강원", "강원도", "Gangwon"}},
	{"충청북도", "Chungcheongbuk-do", []string{"충북", "Chungbuk"}},
	{"충청남도", "Chungcheongnam-do", []string{"충남", "Chungnam"}},
	{"전북특별자치도", "Jeonbuk-do", []string{"전북", "전라북도", "Jeollabuk-do", "Jeonbuk"}},
	{"전라남도", "Jeollanam-do", []string{"전남", "Jeonnam"}},
	{"경상북도", "Gyeongsangbuk-do", []string{"경북", "Gyeongbuk"}},
	{"경상남도", "Gyeongsangnam-do", []string{"경남", "Gyeongnam"}},
	{"제주특별자치도", "Jeju-do", []string{"제주", "제주도", "Jeju"}},
}

// cnProvinces are mainland China's 31 provincial-level divisions (Hong
// Kong, Macao and Taiwan have ISO codes of their own).
var cnProvinces = []region{
	{"北京市", "Beijing", nil}, {"天津市", "Tianjin", nil}, {"河北省", "Hebei", nil}, {"山西省", "Shanxi", nil},
	{"内蒙古自治区", "Inner Mongolia", []string{"内蒙古", "Nei Mongol"}}, {"辽宁省", "Liaoning", nil},
	{"吉林省", "Jilin", nil}, {"黑龙江省", "Heilongjiang", nil}, {"上海市", "Shanghai", nil}, {"江苏省", "Jiangsu", nil},
	{"浙江省", "Zhejiang", nil}, {"安徽省", "Anhui", nil}, {"福建省", "Fujian", nil}, {"江西省", "Jiangxi", nil},
	{"山东省", "Shandong", nil}, {"河南省", "Henan", nil}, {"湖北省", "Hubei", nil}, {"湖南省", "Hunan", nil},
	{"广东省", "Guangdong", nil}, {"广西壮族自治区", "Guangxi", []string{"广西"}}, {"海南省", "Hainan", nil},
	{"重庆市", "Chongqing", nil}, {"四川省", "Sichuan", nil}, {"贵州省", "Guizhou", nil}, {"云南省", "Yunnan", nil},
	{"西藏自治区", "Xizang", []string{"西藏", "Tibet"}}, {"陕西省", "Shaanxi", nil}, {"甘肃省", "Gansu", nil},
	{"青海省", "Qinghai", nil}, {"宁夏回族自治区", "Ningxia", []string{"宁夏"}}, {"新疆维吾尔自治区", "Xinjiang", []string{"新疆"}},
}

// usStates are the USPS state codes: the 50 states, DC, the inhabited
// territories and the armed forces' codes. The code is what an address
// carries; local holds it too, and latin the name.
var usStates = []region{
	{"AL", "Alabama", nil}, {"AK", "Alaska", nil}, {"AZ", "Arizona", nil}, {"AR", "Arkansas", nil},
	{"CA", "California", nil}, {"CO", "Colorado", nil}, {"CT", "Connecticut", nil}, {"DE", "Delaware", nil},
	{"FL", "Florida", nil}, {"GA", "Georgia", nil}, {"HI", "Hawaii", nil}, {"ID", "Idaho", nil},
	{"IL", "Illinois", nil}, {"IN", "Indiana", nil}, {"IA", "Iowa", nil}, {"KS", "Kansas", nil},
	{"KY", "Kentucky", nil}, {"LA", "Louisiana", nil}, {"ME", "Maine", nil}, {"MD", "Maryland", nil},
	{"MA", "Massachusetts", nil}, {"MI", "Michigan", nil}, {"MN", "Minnesota", nil}, {"MS", "Mississippi", nil},
	{"MO", "Missouri", nil}, {"MT", "Montana", nil}, {"NE", "Nebraska", nil}, {"NV", "Nevada", nil},
	{"NH", "New Hampshire", nil}, {"NJ", "New Jersey", nil}, {"NM", "New Mexico", nil}, {"NY", "New York", nil},
	{"NC", "North Carolina", nil}, {"ND", "North Dakota", nil}, {"OH", "Ohio", nil}, {"OK", "Oklahoma", nil},
	{"OR", "Oregon", nil}, {"PA", "Pennsylvania", nil}, {"RI", "Rhode Island", nil}, {"SC", "South Carolina", nil},
	{"SD", "South Dakota", nil}, {"TN", "Tennessee", nil}, {"TX", "Texas", nil}, {"UT", "Utah", nil},
	{"VT", "Vermont", nil}, {"VA", "Virginia", nil}, {"WA", "Washington", nil}, {"WV", "West Virginia", nil},
	{"WI", "Wisconsin", nil}, {"WY", "Wyoming", nil}, {"DC", "District of Columbia", []string{"Washington DC", "Washington, D.C."}},
	{"PR", "Puerto Rico", nil}, {"GU", "Guam", nil}, {"VI", "U.S. Virgin Islands", []string{"Virgin Islands"}},
	{"AS", "American Samoa", nil}, {"MP", "Northern Mariana Islands", nil},
	{"AA", "Armed Forces Americas", nil}, {"AE", "Armed Forces Europe", nil}, {"AP", "Armed Forces Pacific", nil},
}
