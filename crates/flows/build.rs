fn main() {
    adn_build_support::link_libtorch();
}
