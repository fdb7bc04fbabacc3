fn main() {
    println!("bench: see issue 3");
}
